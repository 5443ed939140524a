// Optimizers, learning-rate schedules and gradient clipping. Update rules
// follow PyTorch's (torch.optim) exactly, so runs can be compared.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graft/parameter.h"

namespace graft {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of every parameter, with learning rate `lr`.
  virtual void step(Parameters& params, float lr) = 0;
  // The optimizer's state (moment buffers, step count) as named tensors, for
  // checkpoints; load_state restores it exactly.
  virtual std::map<std::string, Tensor> state() const = 0;
  virtual void load_state(const std::map<std::string, Tensor>& state) = 0;
};

struct SgdOptions {
  float momentum = 0;
  float weight_decay = 0;  // L2 added to the gradient
  bool nesterov = false;
};

struct AdamOptions {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0;
  bool decoupled_weight_decay = false;  // true: AdamW
};

std::unique_ptr<Optimizer> make_sgd(const SgdOptions& options);
std::unique_ptr<Optimizer> make_adam(const AdamOptions& options);

// Learning rate as a function of the optimizer step (0-based).
struct Schedule {
  enum class Kind { kConstant, kStep, kMultiStep, kCosine, kInverse };
  Kind kind = Kind::kConstant;
  float base_lr = 1e-3f;
  float gamma = 0.1f;           // step, multi-step: factor; inverse: gamma
  int64_t step_size = 1;        // step: decay every step_size steps
  std::vector<int64_t> milestones;  // multi-step
  int64_t total_steps = 1;      // cosine: steps to reach min_lr
  int64_t warmup_steps = 0;     // cosine: linear warm-up from 0
  float min_lr = 0;             // cosine
  float power = 0.75f;          // inverse: base * (1 + gamma * step) ^ -power

  float lr_at(int64_t step) const;
};

// Parses "constant", "step", "multistep", "cosine", "inverse"; kInvalidArgument otherwise.
Schedule::Kind parse_schedule_kind(const std::string& name);

// Scales all gradients so their global L2 norm is at most max_norm (as
// torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
double clip_grad_norm(Parameters& params, double max_norm);

}  // namespace graft
