// Ops that pick elements by position: Split, Slice, Gather and Pad. Their
// kernels build, for every output element, the flat index of its source
// element (or -1 for a padding value) and copy through that map; their
// gradients add back through the same map (scatter_add_by_map).
#include <fmt/ranges.h>

#include <algorithm>

#include "ops/kernel_util.h"
#include "ops/op.h"
#include "ops/shape_ops.h"

namespace graft::ops {

namespace {

// The product of shape[from, to).
int64_t span_numel(const Shape& shape, int from, int to) {
  return shape_numel(Shape(shape.begin() + from, shape.begin() + to));
}

// --- Split -------------------------------------------------------------------

// The sizes of Split's pieces along its axis: the `split` input (opset 13;
// also accepted by opset 1), else the `split` attribute (opsets 2-12), else
// equal pieces.
std::vector<int64_t> split_sizes(const Node& node, const Tensor* split_input, int64_t dim,
                                 int pieces) {
  std::vector<int64_t> sizes;
  if (split_input) {
    sizes = int_values(*split_input, "the split input");
  } else if (node.has_attr("split")) {
    sizes = node.attr_ints("split");
  } else {
    GRAFT_CHECK(dim % pieces == 0, kInvalidArgument,
                "cannot split an axis of size {} into {} equal pieces", dim, pieces);
    return std::vector<int64_t>(pieces, dim / pieces);
  }
  GRAFT_CHECK(static_cast<int>(sizes.size()) == pieces, kInvalidArgument,
              "split [{}] gives {} sizes for {} outputs", fmt::join(sizes, ","), sizes.size(),
              pieces);
  int64_t total = 0;
  for (int64_t s : sizes) {
    GRAFT_CHECK(s >= 0, kInvalidArgument, "split [{}] has a negative size", fmt::join(sizes, ","));
    total += s;
  }
  GRAFT_CHECK(total == dim, kInvalidArgument, "split [{}] adds up to {}, but the axis has size {}",
              fmt::join(sizes, ","), total, dim);
  return sizes;
}

OpDef split_op() {
  OpDef d;
  d.type = "Split";
  d.max_inputs = 2;
  d.max_outputs = INT32_MAX;
  d.attributes = {"axis", "split"};
  d.infer = [](InferContext& c) {
    Shape in = c.shape(0);
    int axis = normalize_axis(c.node.attr_int("axis", 0), static_cast<int>(in.size()));
    c.check(!in.empty(), "Split cannot split a scalar");
    const Tensor* split = c.has_input(1) ? &c.require_constant(1, "split") : nullptr;
    std::vector<int64_t> sizes = split_sizes(c.node, split, in[axis], c.num_outputs());
    for (int i = 0; i < c.num_outputs(); ++i) {
      in[axis] = sizes[i];
      c.set_output(i, c.dtype(0), in);
    }
  };
  d.compute = [](KernelContext& c) {
    const Tensor& in = c.in(0);
    int axis = normalize_axis(c.node.attr_int("axis", 0), in.rank());
    std::vector<int64_t> sizes = split_sizes(c.node, c.has_input(1) ? &c.in(1) : nullptr,
                                             in.dim(axis), static_cast<int>(c.outputs.size()));
    for_each_run(in.shape(), axis, sizes,
                 [&](size_t i, int64_t piece_at, int64_t whole_at, int64_t n) {
                   if (c.outputs[i]) copy_run(*c.outputs[i], piece_at, in, whole_at, n);
                 });
  };
  // The input's gradient joins the pieces' gradients (Concat's forward); a
  // piece no gradient reaches contributes zeros.
  d.differentiable_inputs = {0};
  d.backward = [](BackwardContext& c) {
    if (!c.wants_grad(0)) return;
    Tensor& g = c.grad_in(0);
    int axis = normalize_axis(c.node.attr_int("axis", 0), g.rank());
    const Tensor* split = c.inputs.size() > 1 ? c.inputs[1] : nullptr;
    std::vector<int64_t> sizes =
        split_sizes(c.node, split, g.dim(axis), static_cast<int>(c.node.outputs.size()));
    for_each_run(g.shape(), axis, sizes,
                 [&](size_t i, int64_t piece_at, int64_t whole_at, int64_t n) {
                   int k = static_cast<int>(i);
                   if (c.has_grad_output(k)) copy_run(g, whole_at, c.grad_out(k), piece_at, n);
                 });
  };
  return d;
}

// --- Slice -------------------------------------------------------------------

// Where a slice starts on every axis, its step, and the resulting shape.
struct SliceRange {
  std::vector<int64_t> start, step;
  Shape out;
};

// One axis of a slice, clamped as ONNX specifies: a positive step runs
// over [start, end) within [0, dim]; a negative step runs down from start to
// just above end, within [-1, dim - 1] (end -1 means "through index 0").
void slice_axis(SliceRange& r, int axis, int64_t dim, int64_t start, int64_t end, int64_t step) {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  int64_t count = 0;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    if (end > start) count = (end - start - 1) / step + 1;
  } else if (dim > 0) {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    if (start > end) count = (start - end - 1) / -step + 1;
  }
  r.start[axis] = count > 0 ? start : 0;
  r.step[axis] = step;
  r.out[axis] = count;
}

// The `args` are Slice's inputs 1-4 (starts, ends, axes, steps; nullptr
// when absent); before opset 10 starts, ends and axes were attributes and
// there were no steps.
SliceRange slice_range(const Node& node, int opset, const Shape& in,
                       const std::vector<const Tensor*>& args) {
  std::vector<int64_t> starts, ends, axes, steps;
  if (opset < 10) {
    starts = node.attr_ints("starts");
    ends = node.attr_ints("ends");
    axes = node.attr_ints("axes");
  } else {
    GRAFT_CHECK(args[0] && args[1], kInvalidArgument, "Slice needs the starts and ends inputs");
    starts = int_values(*args[0], "starts");
    ends = int_values(*args[1], "ends");
    if (args[2]) axes = int_values(*args[2], "axes");
    if (args[3]) steps = int_values(*args[3], "steps");
  }
  int rank = static_cast<int>(in.size());
  size_t n = starts.size();
  if (axes.empty() && !(opset >= 10 && args[2]))
    for (size_t i = 0; i < n; ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty() && !(opset >= 10 && args[3])) steps.assign(n, 1);
  GRAFT_CHECK(ends.size() == n && axes.size() == n && steps.size() == n, kInvalidArgument,
              "Slice has {} starts, {} ends, {} axes and {} steps; they must match", n, ends.size(),
              axes.size(), steps.size());
  SliceRange r{std::vector<int64_t>(rank, 0), std::vector<int64_t>(rank, 1), in};
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < n; ++i) {
    GRAFT_CHECK(axes[i] >= -rank && axes[i] < rank, kInvalidArgument,
                "Slice axis {} is out of range for rank {}", axes[i], rank);
    int axis = static_cast<int>(axes[i] < 0 ? axes[i] + rank : axes[i]);
    GRAFT_CHECK(!seen[axis], kInvalidArgument, "Slice axis {} is given twice", axes[i]);
    seen[axis] = true;
    GRAFT_CHECK(steps[i] != 0 && steps[i] != INT64_MIN, kInvalidArgument,
                "Slice step {} on axis {} is invalid", steps[i], axes[i]);
    slice_axis(r, axis, in[axis], starts[i], ends[i], steps[i]);
  }
  return r;
}

// For every output element of a Slice, the flat index of its input element.
// `inputs` are the node's inputs (data first; nullptr or missing: absent).
std::vector<int64_t> slice_map(const Node& node, int opset, const Shape& in,
                               const std::vector<const Tensor*>& inputs) {
  std::vector<const Tensor*> args(4, nullptr);
  for (size_t i = 0; i < 4 && i + 1 < inputs.size(); ++i) args[i] = inputs[i + 1];
  SliceRange r = slice_range(node, opset, in, args);
  std::vector<int64_t> in_strides = strides_of(in);
  int64_t base = 0;
  std::vector<int64_t> strides;
  for (size_t d = 0; d < in.size(); ++d) {
    base += r.start[d] * in_strides[d];
    strides.push_back(r.step[d] * in_strides[d]);
  }
  return strided_index_map(r.out, base, strides);
}

OpDef slice_op() {
  OpDef d;
  d.type = "Slice";
  d.max_inputs = 5;
  d.attributes = {"starts", "ends", "axes"};
  d.infer = [](InferContext& c) {
    const char* names[] = {"starts", "ends", "axes", "steps"};
    std::vector<const Tensor*> args(4, nullptr);
    for (int i = 0; i < 4 && c.opset >= 10; ++i)
      if (c.has_input(i + 1)) args[i] = &c.require_constant(i + 1, names[i]);
    c.set_output(0, c.dtype(0), slice_range(c.node, c.opset, c.shape(0), args).out);
  };
  d.compute = [](KernelContext& c) {
    gather_by_map(c.out(0), c.in(0), slice_map(c.node, c.opset, c.in(0).shape(), c.inputs));
  };
  d.differentiable_inputs = {0};
  d.backward = [](BackwardContext& c) {
    if (!c.wants_grad(0)) return;
    Tensor& g = c.grad_in(0);
    scatter_add_by_map(g, c.grad_out(0), slice_map(c.node, c.opset, g.shape(), c.inputs));
  };
  return d;
}

// --- Gather ------------------------------------------------------------------

// For every output element of a Gather, the flat index of its data element.
std::vector<int64_t> gather_map(const Node& node, const Shape& data, const Tensor& indices_t) {
  int rank = static_cast<int>(data.size());
  int axis = normalize_axis(node.attr_int("axis", 0), rank);
  std::vector<int64_t> indices = indices_t.to_vector<int64_t>();
  int64_t dim = data[axis];
  for (int64_t& i : indices) {
    GRAFT_CHECK(i >= -dim && i < dim, kInvalidArgument,
                "Gather index {} is out of range for axis {} of size {}", i, axis, dim);
    if (i < 0) i += dim;
  }
  int64_t outer = span_numel(data, 0, axis);
  int64_t inner = span_numel(data, axis + 1, rank);
  std::vector<int64_t> map;
  map.reserve(outer * indices.size() * inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i : indices)
      for (int64_t k = 0; k < inner; ++k) map.push_back((o * dim + i) * inner + k);
  return map;
}

OpDef gather_op() {
  OpDef d;
  d.type = "Gather";
  d.min_inputs = d.max_inputs = 2;
  d.attributes = {"axis"};
  d.infer = [](InferContext& c) {
    const Shape& data = c.shape(0);
    c.check(!data.empty(), "Gather needs data of rank 1 or more");
    c.require_dtype(1, {DType::kI64, DType::kI32});
    int axis = normalize_axis(c.node.attr_int("axis", 0), static_cast<int>(data.size()));
    Shape out(data.begin(), data.begin() + axis);
    out.insert(out.end(), c.shape(1).begin(), c.shape(1).end());
    out.insert(out.end(), data.begin() + axis + 1, data.end());
    c.set_output(0, c.dtype(0), out);
  };
  d.compute = [](KernelContext& c) {
    gather_by_map(c.out(0), c.in(0), gather_map(c.node, c.in(0).shape(), c.in(1)));
  };
  // Only the data has a gradient (indices are integers); a row gathered
  // several times collects the gradient of every copy.
  d.differentiable_inputs = {0};
  d.backward = [](BackwardContext& c) {
    if (!c.wants_grad(0)) return;
    Tensor& g = c.grad_in(0);
    scatter_add_by_map(g, c.grad_out(0), gather_map(c.node, g.shape(), c.in(1)));
  };
  return d;
}

// --- Pad ---------------------------------------------------------------------

// Index into an axis of size n for a position i that may lie outside it,
// or -1 where the padding value goes.
int64_t pad_source(const std::string& mode, int64_t i, int64_t n) {
  if (i >= 0 && i < n) return i;
  if (mode == "edge") return std::clamp<int64_t>(i, 0, n - 1);
  if (mode == "reflect") {  // mirror without repeating the edge: period 2(n-1)
    if (n == 1) return 0;
    int64_t period = 2 * (n - 1);
    int64_t m = ((i % period) + period) % period;
    return m < n ? m : period - m;
  }
  return -1;
}

std::vector<int64_t> pad_index_map(const std::string& mode, const Shape& in, const Shape& out,
                                   const std::vector<int64_t>& pads) {
  int rank = static_cast<int>(in.size());
  std::vector<int64_t> in_strides = strides_of(in);
  std::vector<int64_t> map(shape_numel(out));
  for (int64_t k = 0; k < static_cast<int64_t>(map.size()); ++k) {
    int64_t rest = k, flat = 0;
    bool inside = true;
    for (int d = rank - 1; d >= 0; --d) {
      int64_t src = pad_source(mode, rest % out[d] - pads[d], in[d]);
      rest /= out[d];
      inside = inside && src >= 0;
      flat += src * in_strides[d];
    }
    map[k] = inside ? flat : -1;
  }
  return map;
}

OpDef pad_op() {
  OpDef d;
  d.type = "Pad";
  d.max_inputs = 3;
  d.attributes = {"mode", "pads", "paddings", "value"};
  d.check = [](const Node& node, int) {
    std::string mode = node.attr_string("mode", "constant");
    GRAFT_CHECK(mode == "constant" || mode == "reflect" || mode == "edge", kUnsupported,
                "Pad mode '{}' is not supported", mode);
  };
  d.infer = [](InferContext& c) {
    const Shape& in = c.shape(0);
    int rank = static_cast<int>(in.size());
    const Tensor* pads_input =
        c.opset >= 11 && c.has_input(1) ? &c.require_constant(1, "pads") : nullptr;
    std::vector<int64_t> pads = pad_amounts(c.node, c.opset, pads_input);
    c.check(static_cast<int>(pads.size()) == 2 * rank,
            "pads [{}] should have {} entries for shape {}", fmt::join(pads, ","), 2 * rank,
            shape_str(in));
    bool constant = c.node.attr_string("mode", "constant") == "constant";
    Shape out(rank);
    for (int i = 0; i < rank; ++i) {
      out[i] = in[i] + pads[i] + pads[i + rank];
      c.check(out[i] >= 0, "pads [{}] remove more than axis {} of shape {} holds",
              fmt::join(pads, ","), i, shape_str(in));
      c.check(constant || in[i] > 0 || out[i] == 0, "cannot {}-pad the empty axis {} of shape {}",
              c.node.attr_string("mode", ""), i, shape_str(in));
    }
    if (c.opset >= 11 && c.has_input(2))
      c.check(c.dtype(2) == c.dtype(0) && shape_numel(c.shape(2)) == 1,
              "constant_value must be one {} value", dtype_name(c.dtype(0)));
    c.set_output(0, c.dtype(0), out);
  };
  d.compute = [](KernelContext& c) {
    const Tensor& in = c.in(0);
    Tensor& out = c.out(0);
    std::vector<int64_t> pads = pad_amounts(c.node, c.opset, c.has_input(1) ? &c.in(1) : nullptr);
    std::string mode = c.node.attr_string("mode", "constant");
    Tensor fill = c.opset >= 11 ? (c.has_input(2) ? c.in(2) : Tensor(in.dtype(), {}))
                                : Tensor::scalar(c.node.attr_float("value", 0.0f)).cast(in.dtype());
    gather_by_map(out, in, pad_index_map(mode, in.shape(), out.shape(), pads), &fill);
  };
  // The data's gradient only: padding with a constant drops the border's
  // gradient, while reflect and edge fold it back onto the elements the
  // border copies. (The constant value itself is not trained.)
  d.differentiable_inputs = {0};
  d.backward = [](BackwardContext& c) {
    if (!c.wants_grad(0)) return;
    Tensor& g = c.grad_in(0);
    const Tensor& g_out = c.grad_out(0);
    const Tensor* pads_input = c.inputs.size() > 1 ? c.inputs[1] : nullptr;
    std::vector<int64_t> pads = pad_amounts(c.node, c.opset, pads_input);
    std::string mode = c.node.attr_string("mode", "constant");
    scatter_add_by_map(g, g_out, pad_index_map(mode, g.shape(), g_out.shape(), pads));
  };
  return d;
}

}  // namespace

// Pad's amounts, all begins then all ends: the `paddings` attribute (opset
// 1), the `pads` attribute (opsets 2-10) or the pads input (opset 11).
std::vector<int64_t> pad_amounts(const Node& node, int opset, const Tensor* pads_input) {
  if (opset >= 11) {
    GRAFT_CHECK(pads_input != nullptr, kInvalidArgument, "Pad needs the pads input from opset 11");
    return int_values(*pads_input, "pads");
  }
  return node.attr_ints(opset < 2 ? "paddings" : "pads");
}

void register_shape_index_ops(OpRegistry& r) {
  r.add(split_op());
  r.add(slice_op());
  r.add(gather_op());
  r.add(pad_op());
}

}  // namespace graft::ops
