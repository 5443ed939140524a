// Adam with L2 weight decay, and AdamW with decoupled weight decay
// (torch.optim.Adam / AdamW, amsgrad off). Arithmetic in float32 in torch's
// order, so parameters match it closely.
#include <cmath>

#include "backend/loops.h"
#include "graft/optim.h"

namespace graft {

namespace {

class Adam : public Optimizer {
 public:
  explicit Adam(const AdamOptions& o) : o_(o) {}

  void step(Parameters& params, float lr) override {
    ++t_;
    const float bc1 = 1 - std::pow(o_.beta1, static_cast<float>(t_));
    const float bc2_sqrt = std::sqrt(1 - std::pow(o_.beta2, static_cast<float>(t_)));
    const float step_size = lr / bc1;
    for (Parameter& p : params) {
      if (!p.grad.defined()) continue;
      auto [m_it, fresh] = m_.try_emplace(p.name, DType::kF32, p.value.shape());
      if (fresh) v_.emplace(p.name, Tensor(DType::kF32, p.value.shape()));
      float* m = m_it->second.data<float>();
      float* v = v_.at(p.name).data<float>();
      float* w = p.value.data<float>();
      const float* g = p.grad.data<float>();
      // A large parameter's values are shared among the threads (a W3 step's
      // 3.5 M took 8 ms on one); each value's arithmetic is the same.
      const int64_t n = p.value.numel();
#pragma omp parallel for simd num_threads(backend::loop_threads(n)) schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        float d = g[i];
        if (o_.decoupled_weight_decay) w[i] *= 1 - lr * o_.weight_decay;
        else d += o_.weight_decay * w[i];
        m[i] = o_.beta1 * m[i] + (1 - o_.beta1) * d;
        v[i] = o_.beta2 * v[i] + (1 - o_.beta2) * d * d;
        float denom = std::sqrt(v[i]) / bc2_sqrt + o_.eps;
        w[i] -= step_size * (m[i] / denom);
      }
    }
  }

  std::map<std::string, Tensor> state() const override {
    std::map<std::string, Tensor> s;
    for (const auto& [name, t] : m_) s["m/" + name] = t;
    for (const auto& [name, t] : v_) s["v/" + name] = t;
    s["step"] = Tensor::scalar<int64_t>(t_);
    return s;
  }

  void load_state(const std::map<std::string, Tensor>& state) override {
    m_.clear();
    v_.clear();
    t_ = 0;
    for (const auto& [key, t] : state) {
      if (key == "step") t_ = t.to_vector<int64_t>().at(0);
      else if (key.rfind("m/", 0) == 0) m_[key.substr(2)] = t.clone();
      else if (key.rfind("v/", 0) == 0) v_[key.substr(2)] = t.clone();
      else fail(ErrorKind::kCorruption, "unexpected Adam state '{}'", key);
    }
    GRAFT_CHECK(m_.size() == v_.size(), kCorruption, "Adam state has {} first and {} second moments",
                m_.size(), v_.size());
  }

 private:
  AdamOptions o_;
  int64_t t_ = 0;
  std::map<std::string, Tensor> m_, v_;
};

}  // namespace

std::unique_ptr<Optimizer> make_adam(const AdamOptions& options) {
  GRAFT_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
              kInvalidArgument, "Adam betas must be in [0, 1)");
  GRAFT_CHECK(options.eps > 0 && options.weight_decay >= 0, kInvalidArgument,
              "Adam eps must be positive and weight decay non-negative");
  return std::make_unique<Adam>(options);
}

}  // namespace graft
