// Add, Sub and Mul of two float32 tensors of one shape (a residual Add) on
// oneDNN, forward and backward. The reference kernels handle broadcasting
// with an index map per element: at MobileNetV2's batch-32 activations that
// map was 50 MB per call, fresh pages every step. Broadcasting cases decline.
#include <optional>

#include "backend/backend.h"
#include "backend/dnnl_util.h"

namespace graft::backend {

namespace {

using dnnl::algorithm;

std::optional<algorithm> binary_of(const std::string& op) {
  if (op == "Add") return algorithm::binary_add;
  if (op == "Sub") return algorithm::binary_sub;
  if (op == "Mul") return algorithm::binary_mul;
  return std::nullopt;
}

bool same_shape_f32(const Tensor& a, const Tensor& b) {
  return enabled() && all_f32({&a, &b}) && a.shape() == b.shape() && a.numel() > 0;
}

// out = a (op) b over n elements; false (nothing written) when oneDNN has no
// primitive for it.
bool run_binary(algorithm alg, const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = a.numel();
  memory::desc md = plain_md({n});
  auto prim = cached<dnnl::binary>(
      "binary " + std::to_string(static_cast<int>(alg)) + " " + std::to_string(n),
      elements_cost(n), [&] {
        return std::make_shared<dnnl::binary>(
            dnnl::binary::primitive_desc(dnnl::binary::desc(alg, md, md, md), attributes(), engine()));
      });
  if (!prim) return false;
  execute(*prim, {{DNNL_ARG_SRC_0, wrap(md, a)}, {DNNL_ARG_SRC_1, wrap(md, b)}, {DNNL_ARG_DST, wrap(md, out)}},
          elements_cost(n));
  return true;
}

}  // namespace

bool binary_forward(const ops::KernelContext& c) {
  std::optional<algorithm> alg = binary_of(c.node.op_type);
  if (!alg || !same_shape_f32(c.in(0), c.in(1)) || !run_binary(*alg, c.in(0), c.in(1), c.out(0)))
    return false;
  count_served();
  return true;
}

// Add: dA = dY, dB = dY. Sub: dA = dY, dB = -dY. Mul: dA = dY B, dB = dY A.
bool binary_backward(const ops::BackwardContext& c) {
  std::optional<algorithm> alg = binary_of(c.node.op_type);
  if (!alg || !c.has_grad_output(0) || !same_shape_f32(c.in(0), c.in(1))) return false;
  const Tensor& dy = c.grad_out(0);
  if (!all_f32({&dy}) || dy.shape() != c.in(0).shape()) return false;
  for (int i : {0, 1}) {
    if (!c.wants_grad(i)) continue;
    const float sign = i == 1 && *alg == algorithm::binary_sub ? -1.0f : 1.0f;
    const bool done = *alg == algorithm::binary_mul
                          ? run_binary(algorithm::binary_mul, dy, c.in(1 - i), c.grad_in(i))
                          : run_eltwise({algorithm::eltwise_linear, sign}, dy, c.grad_in(i));
    if (!done) return false;
  }
  count_served();
  return true;
}

}  // namespace graft::backend
