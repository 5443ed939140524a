// SGD with momentum, Nesterov momentum and L2 weight decay (torch.optim.SGD,
// dampening 0).
#include "graft/optim.h"

namespace graft {

namespace {

class Sgd : public Optimizer {
 public:
  explicit Sgd(const SgdOptions& o) : o_(o) {}

  void step(Parameters& params, float lr) override {
    for (Parameter& p : params) {
      if (!p.grad.defined()) continue;
      float* w = p.value.data<float>();
      const float* g = p.grad.data<float>();
      float* buf = nullptr;
      bool fresh = false;  // the first step's momentum buffer is the gradient itself
      if (o_.momentum != 0) {
        auto it = momentum_.find(p.name);
        fresh = it == momentum_.end();
        if (fresh) it = momentum_.emplace(p.name, Tensor(DType::kF32, p.value.shape())).first;
        buf = it->second.data<float>();
      }
      for (int64_t i = 0; i < p.value.numel(); ++i) {
        float d = g[i] + o_.weight_decay * w[i];
        if (buf) {
          buf[i] = fresh ? d : o_.momentum * buf[i] + d;
          d = o_.nesterov ? d + o_.momentum * buf[i] : buf[i];
        }
        w[i] -= lr * d;
      }
    }
  }

  std::map<std::string, Tensor> state() const override {
    std::map<std::string, Tensor> s;
    for (const auto& [name, b] : momentum_) s["momentum/" + name] = b;
    return s;
  }

  void load_state(const std::map<std::string, Tensor>& state) override {
    momentum_.clear();
    for (const auto& [key, t] : state) {
      GRAFT_CHECK(key.rfind("momentum/", 0) == 0, kCorruption, "unexpected SGD state '{}'", key);
      momentum_[key.substr(9)] = t.clone();
    }
  }

 private:
  SgdOptions o_;
  std::map<std::string, Tensor> momentum_;
};

}  // namespace

std::unique_ptr<Optimizer> make_sgd(const SgdOptions& options) {
  GRAFT_CHECK(options.momentum >= 0 && options.weight_decay >= 0, kInvalidArgument,
              "SGD momentum and weight decay must be non-negative");
  GRAFT_CHECK(!options.nesterov || options.momentum > 0, kInvalidArgument,
              "Nesterov momentum needs momentum > 0");
  return std::make_unique<Sgd>(options);
}

}  // namespace graft
