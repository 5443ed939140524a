#include <algorithm>
#include <cmath>
#include <numbers>

#include "graft/optim.h"

namespace graft {

float Schedule::lr_at(int64_t step) const {
  switch (kind) {
    case Kind::kConstant:
      return base_lr;
    case Kind::kStep:
      return base_lr * std::pow(gamma, static_cast<float>(step / std::max<int64_t>(step_size, 1)));
    case Kind::kMultiStep: {
      auto passed = std::count_if(milestones.begin(), milestones.end(),
                                  [&](int64_t m) { return step >= m; });
      return base_lr * std::pow(gamma, static_cast<float>(passed));
    }
    case Kind::kCosine: {
      if (step < warmup_steps) return base_lr * static_cast<float>(step + 1) / warmup_steps;
      int64_t span = std::max<int64_t>(total_steps - warmup_steps, 1);
      double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
      return static_cast<float>(min_lr + (base_lr - min_lr) * 0.5 * (1 + std::cos(std::numbers::pi * progress)));
    }
    case Kind::kInverse:
      return base_lr * std::pow(1 + gamma * static_cast<float>(step), -power);
  }
  return base_lr;
}

Schedule::Kind parse_schedule_kind(const std::string& name) {
  if (name == "constant") return Schedule::Kind::kConstant;
  if (name == "step") return Schedule::Kind::kStep;
  if (name == "multistep") return Schedule::Kind::kMultiStep;
  if (name == "cosine") return Schedule::Kind::kCosine;
  if (name == "inverse") return Schedule::Kind::kInverse;
  fail(ErrorKind::kInvalidArgument,
       "unknown schedule '{}' (constant, step, multistep, cosine, inverse)", name);
}

double clip_grad_norm(Parameters& params, double max_norm) {
  double sq = 0;
  for (const Parameter& p : params) {
    if (!p.grad.defined()) continue;
    const float* g = p.grad.data<float>();
    for (int64_t i = 0; i < p.grad.numel(); ++i) sq += static_cast<double>(g[i]) * g[i];
  }
  double norm = std::sqrt(sq);
  double coef = max_norm / (norm + 1e-6);
  if (coef < 1) {
    for (Parameter& p : params) {
      if (!p.grad.defined()) continue;
      float* g = p.grad.data<float>();
      for (int64_t i = 0; i < p.grad.numel(); ++i) g[i] = static_cast<float>(g[i] * coef);
    }
  }
  return norm;
}

}  // namespace graft
