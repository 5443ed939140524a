// Ops that rearrange elements without looking at them: Flatten, Reshape,
// Squeeze, Unsqueeze, Transpose, Concat, Shape, and Cast (which converts
// each element on its own). Ops that pick elements by index (Split, Slice,
// Gather, Pad) are in shape_index.cpp.
//
// Gradients: an op that moves elements moves their gradients back the other
// way, so each backward reuses its forward's index map or runs in reverse.
// Shape has none: its output is integer.
#include <fmt/ranges.h>

#include <cmath>
#include <cstring>
#include <optional>

#include "ops/kernel_util.h"
#include "ops/op.h"
#include "ops/shape_ops.h"

namespace graft::ops {

void copy_elements(Tensor& out, const Tensor& src) {
  GRAFT_ASSERT(out.dtype() == src.dtype() && out.numel() == src.numel());
  if (src.nbytes() > 0) std::memcpy(out.raw(), src.raw(), src.nbytes());
}

std::vector<int64_t> strided_index_map(const Shape& out_shape, int64_t base,
                                       const std::vector<int64_t>& strides) {
  GRAFT_ASSERT(strides.size() == out_shape.size());
  int rank = static_cast<int>(out_shape.size());
  std::vector<int64_t> map(shape_numel(out_shape));
  std::vector<int64_t> idx(rank, 0);
  int64_t flat = base;
  for (int64_t& entry : map) {
    entry = flat;
    for (int d = rank - 1; d >= 0; --d) {  // odometer increment
      ++idx[d];
      flat += strides[d];
      if (idx[d] < out_shape[d]) break;
      flat -= strides[d] * idx[d];
      idx[d] = 0;
    }
  }
  return map;
}

void gather_by_map(Tensor& out, const Tensor& in, const std::vector<int64_t>& map,
                   const Tensor* fill) {
  GRAFT_ASSERT(out.dtype() == in.dtype() && static_cast<int64_t>(map.size()) == out.numel());
  GRAFT_ASSERT(fill == nullptr || (fill->dtype() == in.dtype() && fill->numel() == 1));
  visit_dtype(in.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = in.data<T>();
    T* dst = out.data<T>();
    T pad = fill ? fill->data<T>()[0] : T{};
    for (size_t k = 0; k < map.size(); ++k) dst[k] = map[k] >= 0 ? src[map[k]] : pad;
  });
}

void scatter_add_by_map(Tensor& in, const Tensor& out, const std::vector<int64_t>& map) {
  GRAFT_ASSERT(out.dtype() == in.dtype() && static_cast<int64_t>(map.size()) == out.numel());
  visit_float(in.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = out.data<T>();
    T* dst = in.data<T>();
    for (size_t k = 0; k < map.size(); ++k)
      if (map[k] >= 0) dst[map[k]] += src[k];
  });
}

void copy_run(Tensor& dst, int64_t dst_offset, const Tensor& src, int64_t src_offset,
              int64_t count) {
  GRAFT_ASSERT(dst.dtype() == src.dtype() && dst_offset + count <= dst.numel() &&
               src_offset + count <= src.numel());
  size_t elem = dtype_size(src.dtype());
  std::memcpy(static_cast<uint8_t*>(dst.raw()) + dst_offset * elem,
              static_cast<const uint8_t*>(src.raw()) + src_offset * elem, count * elem);
}

std::vector<int64_t> int_values(const Tensor& t, const char* what) {
  GRAFT_CHECK(t.dtype() == DType::kI64 || t.dtype() == DType::kI32, kInvalidArgument,
              "{} must be int64 or int32, got {}", what, dtype_name(t.dtype()));
  return t.to_vector<int64_t>();
}

namespace {

// The kernel of every op whose output holds the input's elements in the
// same order (only the shape differs).
void copy_input(KernelContext& c) { copy_elements(c.out(0), c.in(0)); }

// Their gradient likewise: the output's gradient in the input's shape.
void copy_gradient(BackwardContext& c) {
  if (c.wants_grad(0)) copy_elements(c.grad_in(0), c.grad_out(0));
}

// Flatten, Reshape, Squeeze and Unsqueeze: only the shape changes.
OpDef reshaping_op(OpDef d) {
  d.compute = copy_input;
  d.differentiable_inputs = {0};
  d.backward = copy_gradient;
  return d;
}

OpDef flatten_op() {
  OpDef d;
  d.type = "Flatten";
  d.attributes = {"axis"};
  d.infer = [](InferContext& c) {
    const Shape& in = c.shape(0);
    int64_t rank = static_cast<int64_t>(in.size());
    int64_t axis = c.node.attr_int("axis", 1);
    c.check(axis >= -rank && axis <= rank, "Flatten axis {} is out of range for rank {}", axis,
            rank);
    if (axis < 0) axis += rank;
    Shape outer(in.begin(), in.begin() + axis), inner(in.begin() + axis, in.end());
    c.set_output(0, c.dtype(0), {shape_numel(outer), shape_numel(inner)});
  };
  return reshaping_op(d);
}

// Resolves a Reshape target: 0 copies the input's dimension (unless
// allowzero, where it means an empty dimension) and one -1 takes what is left.
Shape reshape_shape(const InferContext& c, const Shape& in, const std::vector<int64_t>& target,
                    bool allowzero) {
  Shape out(target.size());
  int infer_at = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t v = target[i];
    if (v == -1) {
      c.check(infer_at < 0, "Reshape target [{}] has more than one -1", fmt::join(target, ","));
      infer_at = static_cast<int>(i);
      out[i] = 1;
    } else if (v == 0 && !allowzero) {
      c.check(i < in.size(), "Reshape target [{}] copies dimension {} (a 0) of a rank-{} input",
              fmt::join(target, ","), i, in.size());
      out[i] = in[i];
    } else {
      c.check(v >= 0, "Reshape target [{}] has a negative dimension {}", fmt::join(target, ","), v);
      out[i] = v;
    }
  }
  int64_t n = shape_numel(in);
  if (infer_at >= 0) {
    int64_t rest = shape_numel(out);
    c.check(rest != 0 && n % rest == 0, "cannot reshape {} to [{}]: the -1 cannot be inferred",
            shape_str(in), fmt::join(target, ","));
    out[infer_at] = n / rest;
  }
  c.check(shape_numel(out) == n, "cannot reshape {} ({} elements) to {}", shape_str(in), n,
          shape_str(out));
  return out;
}

OpDef reshape_op() {
  OpDef d;
  d.type = "Reshape";
  d.max_inputs = 2;
  d.attributes = {"shape", "allowzero", "consumed_inputs"};
  d.infer = [](InferContext& c) {
    std::vector<int64_t> target;
    if (c.opset < 5) {  // opset 5 turned the `shape` attribute into an input
      c.check(c.node.has_attr("shape"), "Reshape needs the shape attribute before opset 5");
      target = c.node.attr_ints("shape");
    } else {
      c.check(c.has_input(1), "Reshape needs the shape input from opset 5");
      target = int_values(c.require_constant(1, "shape"), "the shape input");
    }
    bool allowzero = c.node.attr_int("allowzero", 0) != 0;
    c.set_output(0, c.dtype(0), reshape_shape(c, c.shape(0), target, allowzero));
  };
  return reshaping_op(d);
}

// Squeeze and Unsqueeze took `axes` as an attribute before opset 13 and as
// an optional input since.
std::optional<std::vector<int64_t>> axes_arg(const InferContext& c) {
  if (c.opset < 13) {
    if (!c.node.has_attr("axes")) return std::nullopt;
    return c.node.attr_ints("axes");
  }
  if (!c.has_input(1)) return std::nullopt;
  return int_values(c.require_constant(1, "axes"), "axes");
}

// Which of `rank` axes are named; rejects out-of-range and repeated axes.
std::vector<bool> axis_mask(const InferContext& c, const std::vector<int64_t>& axes, int rank) {
  std::vector<bool> mask(rank, false);
  for (int64_t a : axes) {
    c.check(a >= -rank && a < rank, "axis {} is out of range for rank {}", a, rank);
    int d = static_cast<int>(a < 0 ? a + rank : a);
    c.check(!mask[d], "axis {} is given twice", a);
    mask[d] = true;
  }
  return mask;
}

OpDef squeeze_op() {
  OpDef d;
  d.type = "Squeeze";
  d.max_inputs = 2;
  d.attributes = {"axes"};
  d.infer = [](InferContext& c) {
    const Shape& in = c.shape(0);
    int rank = static_cast<int>(in.size());
    std::optional<std::vector<int64_t>> axes = axes_arg(c);
    std::vector<bool> drop(rank);
    if (axes) {
      drop = axis_mask(c, *axes, rank);
      for (int i = 0; i < rank; ++i)
        c.check(!drop[i] || in[i] == 1, "cannot squeeze axis {} of shape {}: its size is not 1", i,
                shape_str(in));
    } else {  // no axes: every axis of size 1
      for (int i = 0; i < rank; ++i) drop[i] = in[i] == 1;
    }
    Shape out;
    for (int i = 0; i < rank; ++i)
      if (!drop[i]) out.push_back(in[i]);
    c.set_output(0, c.dtype(0), out);
  };
  return reshaping_op(d);
}

OpDef unsqueeze_op() {
  OpDef d;
  d.type = "Unsqueeze";
  d.max_inputs = 2;
  d.attributes = {"axes"};
  d.infer = [](InferContext& c) {
    const Shape& in = c.shape(0);
    std::optional<std::vector<int64_t>> axes = axes_arg(c);
    c.check(axes.has_value(), "Unsqueeze needs axes");
    int rank = static_cast<int>(in.size() + axes->size());
    std::vector<bool> added = axis_mask(c, *axes, rank);
    Shape out;
    auto next = in.begin();
    for (int i = 0; i < rank; ++i) out.push_back(added[i] ? 1 : *next++);
    c.set_output(0, c.dtype(0), out);
  };
  return reshaping_op(d);
}

// Transpose's permutation; the default reverses the axes.
std::vector<int64_t> transpose_perm(const Node& node, int rank) {
  std::vector<int64_t> perm = node.attr_ints("perm");
  if (!node.has_attr("perm"))
    for (int i = rank - 1; i >= 0; --i) perm.push_back(i);
  return perm;
}

// For every output element of a Transpose, the flat index of its input element.
std::vector<int64_t> transpose_map(const Node& node, const Shape& in, const Shape& out) {
  std::vector<int64_t> in_strides = strides_of(in);
  std::vector<int64_t> strides;  // output axis d walks input axis perm[d]
  for (int64_t p : transpose_perm(node, static_cast<int>(in.size())))
    strides.push_back(in_strides[p]);
  return strided_index_map(out, 0, strides);
}

OpDef transpose_op() {
  OpDef d;
  d.type = "Transpose";
  d.attributes = {"perm"};
  d.infer = [](InferContext& c) {
    const Shape& in = c.shape(0);
    int rank = static_cast<int>(in.size());
    std::vector<int64_t> perm = transpose_perm(c.node, rank);
    c.check(static_cast<int>(perm.size()) == rank,
            "perm [{}] does not have one entry per axis of {}", fmt::join(perm, ","),
            shape_str(in));
    std::vector<bool> seen(rank, false);
    Shape out;
    for (int64_t p : perm) {
      c.check(p >= 0 && p < rank && !seen[p], "perm [{}] is not a permutation of 0..{}",
              fmt::join(perm, ","), rank - 1);
      seen[p] = true;
      out.push_back(in[p]);
    }
    c.set_output(0, c.dtype(0), out);
  };
  d.compute = [](KernelContext& c) {
    gather_by_map(c.out(0), c.in(0), transpose_map(c.node, c.in(0).shape(), c.out(0).shape()));
  };
  d.differentiable_inputs = {0};
  d.backward = [](BackwardContext& c) {
    if (!c.wants_grad(0)) return;
    Tensor& g = c.grad_in(0);
    scatter_add_by_map(g, c.grad_out(0), transpose_map(c.node, g.shape(), c.grad_out(0).shape()));
  };
  return d;
}

int concat_axis(const Node& node, int opset, int rank) {
  // Before opset 4 the axis was optional and defaulted to 1.
  return normalize_axis(node.attr_int("axis", opset < 4 ? 1 : 0), rank);
}

// Each input's size along the concatenation axis.
std::vector<int64_t> concat_sizes(const std::vector<const Tensor*>& inputs, int axis) {
  std::vector<int64_t> sizes;
  for (const Tensor* in : inputs) sizes.push_back(in->dim(axis));
  return sizes;
}

OpDef concat_op() {
  OpDef d;
  d.type = "Concat";
  d.max_inputs = INT32_MAX;
  d.attributes = {"axis"};
  d.infer = [](InferContext& c) {
    c.check(c.opset < 4 || c.node.has_attr("axis"), "Concat needs the axis attribute");
    for (int i = 0; i < c.num_inputs(); ++i) c.check(c.has_input(i), "input {} is empty", i);
    Shape out = c.shape(0);
    c.check(!out.empty(), "Concat cannot join scalars");
    int axis = concat_axis(c.node, c.opset, static_cast<int>(out.size()));
    for (int i = 1; i < c.num_inputs(); ++i) {
      const Shape& s = c.shape(i);
      c.check(c.dtype(i) == c.dtype(0), "input {} is {}, input 0 is {}", i, dtype_name(c.dtype(i)),
              dtype_name(c.dtype(0)));
      bool fits = s.size() == out.size();
      for (size_t k = 0; fits && k < s.size(); ++k)
        fits = static_cast<int>(k) == axis || s[k] == out[k];
      c.check(fits, "cannot concatenate {} and {} along axis {}", shape_str(c.shape(0)),
              shape_str(s), axis);
      out[axis] += s[axis];
    }
    c.set_output(0, c.dtype(0), out);
  };
  d.compute = [](KernelContext& c) {
    Tensor& out = c.out(0);
    int axis = concat_axis(c.node, c.opset, out.rank());
    for_each_run(out.shape(), axis, concat_sizes(c.inputs, axis),
                 [&](size_t i, int64_t piece_at, int64_t whole_at, int64_t n) {
                   copy_run(out, whole_at, *c.inputs[i], piece_at, n);
                 });
  };
  // Each input's gradient is its part of the output's gradient (Split's forward).
  d.every_input_differentiable = true;
  d.backward = [](BackwardContext& c) {
    const Tensor& g = c.grad_out(0);
    int axis = concat_axis(c.node, c.opset, g.rank());
    for_each_run(g.shape(), axis, concat_sizes(c.inputs, axis),
                 [&](size_t i, int64_t piece_at, int64_t whole_at, int64_t n) {
                   int k = static_cast<int>(i);
                   if (c.wants_grad(k)) copy_run(c.grad_in(k), piece_at, g, whole_at, n);
                 });
  };
  return d;
}

// Shape's output: the dimensions in [start, end) (opset 15), both clamped.
Tensor shape_value(const Node& node, const Shape& shape) {
  int64_t rank = static_cast<int64_t>(shape.size());
  auto clamp_axis = [rank](int64_t a) {
    return std::clamp(a < 0 ? a + rank : a, int64_t{0}, rank);
  };
  int64_t start = clamp_axis(node.attr_int("start", 0));
  int64_t end = clamp_axis(node.attr_int("end", rank));
  std::vector<int64_t> dims;
  for (int64_t i = start; i < end; ++i) dims.push_back(shape[i]);
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(dims.size())}, dims);
}

OpDef shape_op() {
  OpDef d;
  d.type = "Shape";
  d.attributes = {"start", "end"};
  d.infer = [](InferContext& c) { c.set_output_constant(0, shape_value(c.node, c.shape(0))); };
  d.compute = [](KernelContext& c) {
    copy_elements(c.out(0), shape_value(c.node, c.in(0).shape()));
  };
  return d;
}

// Cast's target dtype. `to` is an ONNX TensorProto.DataType code, or its
// name before opset 6; kUnsupported for types graft does not store.
DType cast_target(const Node& node) {
  auto it = node.attrs.find("to");
  GRAFT_CHECK(it != node.attrs.end(), kCorruption, "Cast needs the 'to' attribute");
  static const std::vector<std::tuple<int64_t, const char*, DType>> kTypes = {
      {1, "FLOAT", DType::kF32},    {2, "UINT8", DType::kU8},   {3, "INT8", DType::kI8},
      {6, "INT32", DType::kI32},    {7, "INT64", DType::kI64},  {9, "BOOL", DType::kBool},
      {10, "FLOAT16", DType::kF16}, {11, "DOUBLE", DType::kF64}};
  const std::string* name = std::get_if<std::string>(&it->second);
  int64_t code = name ? -1 : node.attr_int("to", 0);
  for (const auto& [c, n, t] : kTypes)
    if (name ? *name == n : code == c) return t;
  fail(ErrorKind::kUnsupported, "Cast to '{}' is not supported (graft has no such dtype)",
       name ? *name : std::to_string(code));
}

// Correctly rounded double -> float16. Going through float would round twice
// (1 + 2^-11 + 2^-40 would become 1, not 1 + 2^-10). Rounding to float "to
// odd" first (an inexact result keeps an odd last bit) makes the second
// rounding exact, as float has more than 2 bits to spare over float16.
Half double_to_half(double v) {
  float f = static_cast<float>(v);
  if (std::isfinite(f) && static_cast<double>(f) != v) {
    if (std::abs(static_cast<double>(f)) > std::abs(v)) f = std::nextafter(f, 0.0f);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    bits |= 1u;
    std::memcpy(&f, &bits, 4);
  }
  return float_to_half(f);
}

// Converts src's elements into out's dtype (same element count).
void convert_into(Tensor& out, const Tensor& src) {
  if (src.dtype() == DType::kF64 && out.dtype() == DType::kF16) {
    const double* from = src.data<double>();
    Half* to = out.data<Half>();
    for (int64_t i = 0; i < src.numel(); ++i) to[i] = double_to_half(from[i]);
  } else {
    copy_elements(out, src.dtype() == out.dtype() ? src : src.cast(out.dtype()));
  }
}

OpDef cast_op() {
  OpDef d;
  d.type = "Cast";
  d.attributes = {"to"};
  d.check = [](const Node& node, int) { cast_target(node); };
  d.infer = [](InferContext& c) { c.set_output(0, cast_target(c.node), c.shape(0)); };
  d.compute = [](KernelContext& c) { convert_into(c.out(0), c.in(0)); };
  // Between float types Cast is the identity up to rounding, so the gradient
  // is cast back. Into or out of an integer or bool type nothing flows: the
  // executor never differentiates a node without a float output, and an
  // integer input never carries a gradient, so reaching here is a misuse.
  d.differentiable_inputs = {0};
  d.backward = [](BackwardContext& c) {
    DType from = c.in(0).dtype(), to = c.grad_out(0).dtype();
    GRAFT_CHECK(is_floating(from) && is_floating(to), kInvalidArgument,
                "Cast from {} to {} has no gradient (only casts between float types do)",
                dtype_name(from), dtype_name(to));
    if (c.wants_grad(0)) convert_into(c.grad_in(0), c.grad_out(0));
  };
  return d;
}

}  // namespace

void register_shape_ops(OpRegistry& r) {
  r.add(flatten_op());
  r.add(reshape_op());
  r.add(squeeze_op());
  r.add(unsqueeze_op());
  r.add(transpose_op());
  r.add(concat_op());
  r.add(shape_op());
  r.add(cast_op());
  register_shape_index_ops(r);
}

}  // namespace graft::ops
