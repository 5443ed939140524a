// Activations (Relu, LeakyRelu, Sigmoid, Tanh, HardSwish, Clip) and
// Softmax/LogSoftmax on oneDNN, forward and backward.
//
// Element-wise ops see a tensor as one flat line of numbers, so every shape
// with the same element count shares a primitive. The backward passes read
// the forward input x (and recompute Softmax's output), as the reference
// rules do, so the executor need not keep these ops' outputs.
#include <cmath>
#include <limits>
#include <optional>

#include "backend/backend.h"
#include "backend/dnnl_util.h"

namespace graft::backend {

using dnnl::algorithm;

// At the kinks oneDNN's derivatives are the reference's: Relu'(0) = 0,
// LeakyRelu'(0) = alpha, HardSwish' = 0 at -3 and 1 at 3.
std::optional<Eltwise> activation_of(const Node& node) {
  const std::string& op = node.op_type;
  if (op == "Relu") return Eltwise{algorithm::eltwise_relu};
  if (op == "LeakyRelu") return Eltwise{algorithm::eltwise_relu, node.attr_float("alpha", 0.01f)};
  if (op == "Sigmoid") return Eltwise{algorithm::eltwise_logistic};
  if (op == "Tanh") return Eltwise{algorithm::eltwise_tanh};
  if (op == "HardSwish") return Eltwise{algorithm::eltwise_hardswish};
  return std::nullopt;
}

namespace {

using dnnl::prop_kind;

dnnl::eltwise_forward::desc eltwise_desc(const Eltwise& f, prop_kind prop, int64_t n) {
  return dnnl::eltwise_forward::desc(prop, f.alg, plain_md({n}), f.alpha, f.beta);
}

}  // namespace

bool run_eltwise(const Eltwise& f, const Tensor& x, Tensor& y) {
  int64_t n = x.numel();
  auto prim = cached<dnnl::eltwise_forward>(f.key("eltwise", n), elements_cost(n), [&] {
    dnnl::eltwise_forward::primitive_desc pd(eltwise_desc(f, prop_kind::forward_inference, n),
                                             attributes(), engine());
    return std::make_shared<dnnl::eltwise_forward>(pd);
  });
  if (!prim) return false;
  memory::desc md = plain_md({n});
  execute(*prim, {{DNNL_ARG_SRC, wrap(md, x)}, {DNNL_ARG_DST, wrap(md, y)}}, elements_cost(n));
  return true;
}

namespace {

bool eltwise_forward(const ops::KernelContext& c, const Eltwise& f) {
  const Tensor& x = c.in(0);
  if (!enabled() || !all_f32({&x}) || x.numel() == 0 || !run_eltwise(f, x, c.out(0))) return false;
  count_served();
  return true;
}

bool eltwise_backward(const ops::BackwardContext& c, const Eltwise& f) {
  if (!enabled() || !c.has_grad_output(0) || !c.wants_grad(0)) return false;
  const Tensor& x = c.in(0);
  if (!all_f32({&x, &c.grad_out(0)}) || x.numel() == 0) return false;
  int64_t n = x.numel();
  auto prim =
      cached<dnnl::eltwise_backward>(f.key("eltwise_backward", n), elements_cost(2 * n), [&] {
        dnnl::eltwise_forward::primitive_desc hint(eltwise_desc(f, prop_kind::forward_training, n),
                                                   engine());
        memory::desc md = plain_md({n});
        dnnl::eltwise_backward::primitive_desc pd(
            dnnl::eltwise_backward::desc(f.alg, md, md, f.alpha, f.beta), attributes(), engine(), hint);
        return std::make_shared<dnnl::eltwise_backward>(pd);
      });
  if (!prim) return false;
  memory::desc md = plain_md({n});
  execute(*prim,
          {{DNNL_ARG_SRC, wrap(md, x)},
           {DNNL_ARG_DIFF_DST, wrap(md, c.grad_out(0))},
           {DNNL_ARG_DIFF_SRC, wrap(md, c.grad_in(0))}},
          elements_cost(2 * n));
  count_served();
  return true;
}

// --- Softmax ------------------------------------------------------------------

std::string softmax_key(const char* what, SoftmaxLines l, bool log) {
  return fmt::format("{} {} {}x{}x{}", what, log, l.outer, l.len, l.inner);
}

memory::desc lines_md(SoftmaxLines l) { return plain_md({l.outer, l.len, l.inner}); }

// Softmax and LogSoftmax are two primitives in oneDNN 2.6; one entry holds
// whichever the op needs.
struct SoftmaxForward {
  dnnl::primitive prim;
};

std::shared_ptr<SoftmaxForward> build_softmax_forward(SoftmaxLines l, bool log, prop_kind prop) {
  auto e = std::make_shared<SoftmaxForward>();
  if (log)
    e->prim = dnnl::logsoftmax_forward(dnnl::logsoftmax_forward::primitive_desc(
        dnnl::logsoftmax_forward::desc(prop, lines_md(l), 1), attributes(), engine()));
  else
    e->prim = dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc(
        dnnl::softmax_forward::desc(prop, lines_md(l), 1), attributes(), engine()));
  return e;
}

struct SoftmaxBackward {
  dnnl::primitive forward;  // recomputes y, which the backward reads
  dnnl::primitive backward;
};

std::shared_ptr<SoftmaxBackward> build_softmax_backward(SoftmaxLines l, bool log) {
  auto e = std::make_shared<SoftmaxBackward>();
  memory::desc md = lines_md(l);
  if (log) {
    dnnl::logsoftmax_forward::primitive_desc hint(
        dnnl::logsoftmax_forward::desc(prop_kind::forward_training, md, 1), attributes(), engine());
    e->forward = dnnl::logsoftmax_forward(hint);
    e->backward = dnnl::logsoftmax_backward(dnnl::logsoftmax_backward::primitive_desc(
        dnnl::logsoftmax_backward::desc(md, md, 1), attributes(), engine(), hint));
  } else {
    dnnl::softmax_forward::primitive_desc hint(
        dnnl::softmax_forward::desc(prop_kind::forward_training, md, 1), attributes(), engine());
    e->forward = dnnl::softmax_forward(hint);
    e->backward = dnnl::softmax_backward(dnnl::softmax_backward::primitive_desc(
        dnnl::softmax_backward::desc(md, md, 1), attributes(), engine(), hint));
  }
  return e;
}

}  // namespace

bool activation_forward(const ops::KernelContext& c) {
  std::optional<Eltwise> f = activation_of(c.node);
  return f && eltwise_forward(c, *f);
}

bool activation_backward(const ops::BackwardContext& c) {
  std::optional<Eltwise> f = activation_of(c.node);
  return f && eltwise_backward(c, *f);
}

// ONNX's Clip is min(max(x, lo), hi), which is hi everywhere when lo > hi;
// oneDNN's clip gives lo there, so that case declines.
bool clip_forward(const ops::KernelContext& c, float lo, float hi) {
  if (!(lo <= hi)) return false;
  return eltwise_forward(c, Eltwise{algorithm::eltwise_clip, lo, hi});
}

// oneDNN passes the gradient where lo < x <= hi; the reference (as
// PyTorch's clamp) where lo <= x <= hi. Moving lo down by one float makes
// the two agree on every float x.
bool clip_backward(const ops::BackwardContext& c, float lo, float hi) {
  if (!(lo <= hi)) return false;
  float below = std::nextafter(lo, -std::numeric_limits<float>::infinity());
  return eltwise_backward(c, Eltwise{algorithm::eltwise_clip, below, hi});
}

bool softmax_forward(const ops::KernelContext& c, SoftmaxLines lines, bool log) {
  const Tensor& x = c.in(0);
  if (!enabled() || !all_f32({&x}) || x.numel() == 0) return false;
  auto e = cached<SoftmaxForward>(
      softmax_key("softmax", lines, log), elements_cost(4 * x.numel()),
      [&] { return build_softmax_forward(lines, log, prop_kind::forward_inference); });
  if (!e) return false;
  memory::desc md = lines_md(lines);
  int64_t cost = elements_cost(4 * x.numel());  // max, exp and sum, divide
  execute(e->prim, {{DNNL_ARG_SRC, wrap(md, x)}, {DNNL_ARG_DST, wrap(md, c.out(0))}}, cost);
  count_served();
  return true;
}

bool softmax_backward(const ops::BackwardContext& c, SoftmaxLines lines, bool log) {
  if (!enabled() || !c.has_grad_output(0) || !c.wants_grad(0)) return false;
  const Tensor& x = c.in(0);
  if (!all_f32({&x, &c.grad_out(0)}) || x.numel() == 0) return false;
  auto e = cached<SoftmaxBackward>(softmax_key("softmax_backward", lines, log),
                                   elements_cost(4 * x.numel()),
                                   [&] { return build_softmax_backward(lines, log); });
  if (!e) return false;
  memory::desc md = lines_md(lines);
  memory y = scratch(md, kDstSlot);
  int64_t cost = elements_cost(4 * x.numel());
  execute(e->forward, {{DNNL_ARG_SRC, wrap(md, x)}, {DNNL_ARG_DST, y}}, cost);
  execute(e->backward,
          {{DNNL_ARG_DST, y},
           {DNNL_ARG_DIFF_DST, wrap(md, c.grad_out(0))},
           {DNNL_ARG_DIFF_SRC, wrap(md, c.grad_in(0))}},
          cost);
  count_served();
  return true;
}

}  // namespace graft::backend
