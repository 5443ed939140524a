// Resize (opsets 10, 11, 13) and Upsample (opsets 7 to 9): nearest, N-linear
// and cubic interpolation. The formulas follow the ONNX reference
// implementation (onnx/backend/test/case/node/resize.py), which generated the
// conformance data; where it differs from the operator text (it takes the
// resized length as scale * input length, unrounded), the reference wins.
#include <algorithm>
#include <cmath>

#include "ops/kernel_util.h"
#include "ops/op.h"

namespace graft::ops {

namespace {

enum class Mode { kNearest, kLinear, kCubic };
enum class Coord {
  kHalfPixel,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfCropAndResize,
  kTfHalfPixelForNn,
};
enum class Rounding { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

// How one node interpolates, from its attributes and the opset.
struct Interp {
  Mode mode = Mode::kNearest;
  Coord coord = Coord::kHalfPixel;
  Rounding rounding = Rounding::kRoundPreferFloor;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0.0;
};

Mode mode_of(const std::string& s) {
  if (s == "nearest") return Mode::kNearest;
  // "bilinear" is Upsample-1's name for it, still written by some old exporters.
  if (s == "linear" || s == "bilinear") return Mode::kLinear;
  if (s == "cubic") return Mode::kCubic;
  fail(ErrorKind::kUnsupported, "attribute 'mode' value '{}' is not supported", s);
}

Coord coord_of(const std::string& s) {
  if (s == "half_pixel") return Coord::kHalfPixel;
  if (s == "pytorch_half_pixel") return Coord::kPytorchHalfPixel;
  if (s == "align_corners") return Coord::kAlignCorners;
  if (s == "asymmetric") return Coord::kAsymmetric;
  if (s == "tf_crop_and_resize") return Coord::kTfCropAndResize;
  if (s == "tf_half_pixel_for_nn") return Coord::kTfHalfPixelForNn;
  fail(ErrorKind::kUnsupported,
       "attribute 'coordinate_transformation_mode' value '{}' is not supported", s);
}

Rounding rounding_of(const std::string& s) {
  if (s == "round_prefer_floor") return Rounding::kRoundPreferFloor;
  if (s == "round_prefer_ceil") return Rounding::kRoundPreferCeil;
  if (s == "floor") return Rounding::kFloor;
  if (s == "ceil") return Rounding::kCeil;
  fail(ErrorKind::kUnsupported, "attribute 'nearest_mode' value '{}' is not supported", s);
}

Interp interp_of(const Node& node, int opset) {
  Interp p;
  p.mode = mode_of(node.attr_string("mode", "nearest"));
  if (node.op_type == "Upsample" || opset < 11) {
    // Before opset 11 there is one convention: ONNX's Resize 10->11 adapter
    // maps it to asymmetric coordinates with nearest rounding down.
    p.coord = Coord::kAsymmetric;
    p.rounding = Rounding::kFloor;
    GRAFT_CHECK(p.mode != Mode::kCubic, kUnsupported,
                "attribute 'mode' value 'cubic' needs opset 11 or later");
    return p;
  }
  p.coord = coord_of(node.attr_string("coordinate_transformation_mode", "half_pixel"));
  p.rounding = rounding_of(node.attr_string("nearest_mode", "round_prefer_floor"));
  p.cubic_a = node.attr_float("cubic_coeff_a", -0.75f);
  p.exclude_outside = node.attr_int("exclude_outside", 0) != 0;
  p.extrapolation = node.attr_float("extrapolation_value", 0.0f);
  return p;
}

// Where each optional input sits; -1 when the op version has no such input.
struct Slots {
  int roi = -1, scales = -1, sizes = -1;
};

Slots slots_of(const Node& node, int opset) {
  if (node.op_type == "Upsample") return {-1, opset >= 9 ? 1 : -1, -1};
  if (opset < 11) return {-1, 1, -1};
  return {1, 2, 3};
}

// Output size and scale factor per axis. As in the reference: given sizes,
// scale = out / in; given scales, out = floor(in * scale).
struct Geometry {
  Shape out;
  std::vector<double> scales;
};

Geometry from_scales(const Shape& in, const std::vector<double>& scales) {
  GRAFT_CHECK(scales.size() == in.size(), kInvalidArgument,
              "scales has {} values for an input of rank {}", scales.size(), in.size());
  Geometry g{Shape(in.size()), scales};
  for (size_t i = 0; i < in.size(); ++i) {
    GRAFT_CHECK(scales[i] > 0, kInvalidArgument, "scale {} on axis {} is not positive", scales[i],
                i);
    g.out[i] = static_cast<int64_t>(std::floor(scales[i] * static_cast<double>(in[i])));
  }
  return g;
}

Geometry from_sizes(const Shape& in, const std::vector<int64_t>& sizes) {
  GRAFT_CHECK(sizes.size() == in.size(), kInvalidArgument,
              "sizes has {} values for an input of rank {}", sizes.size(), in.size());
  Geometry g{sizes, std::vector<double>(in.size())};
  for (size_t i = 0; i < in.size(); ++i) {
    GRAFT_CHECK(sizes[i] >= 0, kInvalidArgument, "size {} on axis {} is negative", sizes[i], i);
    GRAFT_CHECK(in[i] > 0 || sizes[i] == 0, kInvalidArgument,
                "axis {} is empty and cannot be resized to {}", i, sizes[i]);
    g.scales[i] = in[i] > 0 ? static_cast<double>(sizes[i]) / static_cast<double>(in[i]) : 1.0;
  }
  return g;
}

// Exactly one of scales and sizes (an empty tensor counts as absent) fixes
// the output; Upsample before opset 9 has scales as an attribute.
Geometry geometry_of(const Node& node, int opset, const Shape& in, const Tensor* scales,
                     const Tensor* sizes) {
  GRAFT_CHECK(!in.empty(), kInvalidArgument, "cannot resize a scalar");
  if (node.op_type == "Upsample") {
    if (opset < 9) {
      GRAFT_CHECK(node.has_attr("scales"), kInvalidArgument, "attribute 'scales' is missing");
      std::vector<float> s = node.attr_floats("scales");
      return from_scales(in, std::vector<double>(s.begin(), s.end()));
    }
    GRAFT_CHECK(scales && scales->numel() > 0, kInvalidArgument,
                "input scales is missing or empty");
    return from_scales(in, scales->to_vector<double>());
  }
  bool has_scales = scales && scales->numel() > 0;
  bool has_sizes = sizes && sizes->numel() > 0;
  GRAFT_CHECK(has_scales != has_sizes, kInvalidArgument,
              "exactly one of scales and sizes must be given, got {}",
              has_scales ? "both" : "neither");
  if (has_sizes) return from_sizes(in, sizes->to_vector<int64_t>());
  return from_scales(in, scales->to_vector<double>());
}

// Where output coordinate x of an axis lands in the input. `length` is the
// resized length as the reference computes it (scale * in, unrounded).
double original_coordinate(const Interp& p, int64_t x_out, int64_t in, double scale,
                           double roi_start, double roi_end) {
  double x = static_cast<double>(x_out);
  double length = scale * static_cast<double>(in);
  double last = static_cast<double>(in - 1);
  switch (p.coord) {
    case Coord::kHalfPixel:
      return (x + 0.5) / scale - 0.5;
    case Coord::kPytorchHalfPixel:
      return length == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
    case Coord::kAlignCorners:
      return length == 1 ? 0.0 : x * last / (length - 1);
    case Coord::kAsymmetric:
      return x / scale;
    case Coord::kTfHalfPixelForNn:
      return (x + 0.5) / scale;
    case Coord::kTfCropAndResize: {
      double span = roi_end - roi_start;
      double start = roi_start * last;
      return length == 1 ? span * last / 2 + start : x * span * last / (length - 1) + start;
    }
  }
  GRAFT_ASSERT(false);
}

// Weights of the n input points around a coordinate whose distance past the
// first of the two middle points is `ratio`, in (0, 1].
std::vector<double> coefficients(const Interp& p, double ratio) {
  switch (p.mode) {
    case Mode::kLinear:
      return {1 - ratio, ratio};
    case Mode::kNearest: {
      bool upper = true;  // ratio 1: the coordinate is the upper point itself
      if (ratio < 1) {
        switch (p.rounding) {
          case Rounding::kRoundPreferFloor:
            upper = ratio > 0.5;
            break;
          case Rounding::kRoundPreferCeil:
            upper = ratio >= 0.5;
            break;
          case Rounding::kFloor:
            upper = false;
            break;
          case Rounding::kCeil:
            upper = true;
            break;
        }
      }
      return {upper ? 0.0 : 1.0, upper ? 1.0 : 0.0};
    }
    case Mode::kCubic: {
      // Keys' cubic convolution kernel at distances 1+r, r, 1-r, 2-r.
      double a = p.cubic_a;
      auto near = [a](double d) { return ((a + 2) * d - (a + 3)) * d * d + 1; };
      auto far = [a](double d) { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; };
      return {far(ratio + 1), near(ratio), near(1 - ratio), far(2 - ratio)};
    }
  }
  GRAFT_ASSERT(false);
}

// The input points one output coordinate reads along an axis, with their
// weights; `outside` means it takes extrapolation_value instead.
struct Taps {
  std::vector<int64_t> index;
  std::vector<double> weight;
  bool outside = false;
};

Taps taps_at(const Interp& p, int64_t x, int64_t in, double scale, double roi_start,
             double roi_end) {
  Taps t;
  double x_ori = original_coordinate(p, x, in, scale, roi_start, roi_end);
  // Written to count a NaN (from a NaN roi) as outside too.
  bool inside = x_ori >= 0 && x_ori <= static_cast<double>(in - 1);
  if (p.coord == Coord::kTfCropAndResize && !inside) {
    t.outside = true;
    return t;
  }
  // The lower middle point lies strictly below x_ori, so ratio is in (0, 1].
  double lower = std::floor(x_ori);
  if (lower == x_ori) lower -= 1;
  std::vector<double> w = coefficients(p, x_ori - lower);
  int64_t n = static_cast<int64_t>(w.size());
  // The reference pads the axis by n/2 copies of its edge values and takes
  // the n points nearest x_ori in the padded axis: a window that cannot leave
  // the padding.
  int64_t pad = n / 2;
  int64_t first = static_cast<int64_t>(lower) - (pad - 1);
  first = std::clamp(first, -pad, in + pad - n);
  if (p.exclude_outside) {
    std::vector<double> kept = w;
    double sum = 0;
    for (int64_t k = 0; k < n; ++k) {
      if (first + k < 0 || first + k >= in) kept[k] = 0;
      sum += kept[k];
    }
    // All weight outside (nearest rounding onto the padding): the reference
    // divides by zero; keep the edge value instead.
    if (sum != 0)
      for (int64_t k = 0; k < n; ++k) w[k] = kept[k] / sum;
  }
  for (int64_t k = 0; k < n; ++k) {
    if (w[k] == 0) continue;  // nearest and cubic at whole coordinates read fewer points
    t.index.push_back(std::clamp<int64_t>(first + k, 0, in - 1));
    t.weight.push_back(w[k]);
  }
  return t;
}

bool is_identity(const std::vector<Taps>& taps, int64_t in) {
  if (static_cast<int64_t>(taps.size()) != in) return false;
  for (int64_t x = 0; x < in; ++x) {
    const Taps& t = taps[x];
    if (t.outside || t.index.size() != 1 || t.index[0] != x || t.weight[0] != 1.0) return false;
  }
  return true;
}

// Interpolates `values` (of `shape`) along one axis; updates shape.
template <typename A>
std::vector<A> resize_axis(const std::vector<A>& values, Shape& shape, int axis,
                           const std::vector<Taps>& taps, double extrapolation) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= shape[d];
  for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  int64_t in = shape[axis], out = static_cast<int64_t>(taps.size());
  std::vector<A> result(static_cast<size_t>(outer * out * inner));
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t x = 0; x < out; ++x) {
      const Taps& t = taps[x];
      A* dst = &result[(o * out + x) * inner];
      const A* src = &values[o * in * inner];
      for (int64_t i = 0; i < inner; ++i) {
        if (t.outside) {
          dst[i] = static_cast<A>(extrapolation);
        } else if (t.index.size() == 1 && t.weight[0] == 1.0) {
          dst[i] = src[t.index[0] * inner + i];  // exact, also for integers
        } else {
          double acc = 0;
          for (size_t k = 0; k < t.index.size(); ++k)
            acc += t.weight[k] * static_cast<double>(src[t.index[k] * inner + i]);
          dst[i] = static_cast<A>(acc);
        }
      }
    }
  }
  shape[axis] = out;
  return result;
}

// Values of input `slot` when given and not empty, else nullptr.
const Tensor* given(const KernelContext& c, int slot) {
  if (slot < 0 || !c.has_input(slot) || c.in(slot).numel() == 0) return nullptr;
  return &c.in(slot);
}

void check_resize(const Node& node, int opset) { interp_of(node, opset); }

void infer_resize(InferContext& c) {
  Interp p = interp_of(c.node, c.opset);
  Slots s = slots_of(c.node, c.opset);
  if (p.mode == Mode::kNearest)
    c.require_dtype(0,
                    {DType::kF32, DType::kF64, DType::kI64, DType::kI32, DType::kI8, DType::kU8});
  else
    c.require_dtype(0, {DType::kF32, DType::kF64});
  auto is_given = [&](int slot) {
    return slot >= 0 && c.has_input(slot) && shape_numel(c.shape(slot)) > 0;
  };
  const Tensor* scales = nullptr;
  const Tensor* sizes = nullptr;
  if (is_given(s.scales)) {
    c.require_dtype(s.scales, {DType::kF32, DType::kF64});
    c.check(c.shape(s.scales).size() == 1, "scales must be 1-D, got shape {}",
            shape_str(c.shape(s.scales)));
    scales = &c.require_constant(s.scales, "scales");
  }
  if (is_given(s.sizes)) {
    c.require_dtype(s.sizes, {DType::kI64});
    c.check(c.shape(s.sizes).size() == 1, "sizes must be 1-D, got shape {}",
            shape_str(c.shape(s.sizes)));
    sizes = &c.require_constant(s.sizes, "sizes");
  }
  if (p.coord == Coord::kTfCropAndResize) {
    size_t rank = c.shape(0).size();
    c.check(is_given(s.roi), "coordinate_transformation_mode tf_crop_and_resize needs roi");
    c.require_dtype(s.roi, {DType::kF32, DType::kF64});
    c.check(c.shape(s.roi) == Shape{static_cast<int64_t>(2 * rank)},
            "roi has shape {}; an input of rank {} needs {} values", shape_str(c.shape(s.roi)),
            rank, 2 * rank);
  }
  Geometry g = geometry_of(c.node, c.opset, c.shape(0), scales, sizes);
  c.set_output(0, c.dtype(0), g.out);
}

void compute_resize(KernelContext& c) {
  Interp p = interp_of(c.node, c.opset);
  Slots s = slots_of(c.node, c.opset);
  const Tensor& x = c.in(0);
  Tensor& y = c.out(0);
  Geometry g = geometry_of(c.node, c.opset, x.shape(), given(c, s.scales), given(c, s.sizes));
  GRAFT_ASSERT(g.out == y.shape());
  if (y.numel() == 0) return;
  std::vector<double> roi;
  if (p.coord == Coord::kTfCropAndResize) roi = given(c, s.roi)->to_vector<double>();
  int rank = x.rank();
  visit_numeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    // Floats are interpolated in double, as the reference does; integers
    // only reach here in nearest mode, where values are copied exactly.
    using A = std::conditional_t<std::is_floating_point_v<T>, double, T>;
    const T* px = x.data<T>();
    std::vector<A> values(px, px + x.numel());
    Shape shape = x.shape();
    // Innermost axis first, the order of the reference's recursion.
    for (int axis = rank - 1; axis >= 0; --axis) {
      std::vector<Taps> taps;
      for (int64_t o = 0; o < g.out[axis]; ++o)
        taps.push_back(taps_at(p, o, shape[axis], g.scales[axis], roi.empty() ? 0 : roi[axis],
                               roi.empty() ? 0 : roi[rank + axis]));
      if (is_identity(taps, shape[axis])) continue;
      values = resize_axis(values, shape, axis, taps, p.extrapolation);
    }
    T* py = y.data<T>();
    for (size_t i = 0; i < values.size(); ++i) py[i] = static_cast<T>(values[i]);
  });
}

}  // namespace

void register_resize_ops(OpRegistry& r) {
  OpDef resize;
  resize.type = "Resize";
  resize.min_inputs = 2;
  resize.max_inputs = 4;
  resize.attributes = {"mode",
                       "coordinate_transformation_mode",
                       "nearest_mode",
                       "cubic_coeff_a",
                       "exclude_outside",
                       "extrapolation_value"};
  resize.check = check_resize;
  resize.infer = infer_resize;
  resize.compute = compute_resize;
  r.add(resize);

  OpDef upsample;
  upsample.type = "Upsample";
  upsample.min_inputs = 1;
  upsample.max_inputs = 2;
  upsample.attributes = {"mode", "scales"};
  upsample.check = check_resize;
  upsample.infer = infer_resize;
  upsample.compute = compute_resize;
  r.add(upsample);
}

}  // namespace graft::ops
