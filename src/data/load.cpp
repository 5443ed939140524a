// One image file to one model input: probe the header, choose the crop,
// decode at the smallest JPEG scale that still covers it, resample, finish.
#include <cmath>
#include <vector>

#include "data/transform.h"
#include "graft/image.h"

namespace graft {

void load_image_into(const std::string& path, const Preprocess& p, const Augment& a,
                     uint64_t rng_seed, float* out) {
  data::check_preprocess(p);
  const std::string bytes = read_image_file(path);
  const ImageInfo info = probe_image(bytes, path, p.max_pixels);
  const data::TransformPlan plan = data::plan_transform(info.width, info.height, p, a, rng_seed);

  DecodeOptions o;
  o.background = p.background;
  o.max_pixels = p.max_pixels;
  // Large enough that the crop still has at least size×size decoded pixels.
  o.min_width = static_cast<int>(std::ceil(info.width * double(p.size) / plan.box.w - 1e-6));
  o.min_height = static_cast<int>(std::ceil(info.height * double(p.size) / plan.box.h - 1e-6));
  const Image image = decode_image(bytes, path, o);

  // The plan's box is in full-size pixels; the decoded image may be smaller.
  const double sx = double(image.width) / info.width, sy = double(image.height) / info.height;
  const Box box{plan.box.x * sx, plan.box.y * sy, plan.box.w * sx, plan.box.h * sy};
  const int n = static_cast<int>(p.size);
  thread_local std::vector<float> rgb;
  rgb.resize(size_t(n) * n * 3);
  resample(image, box, n, n, rgb.data());
  data::finish_transform(rgb.data(), plan, p, out);
}

Tensor load_image(const std::string& path, const Preprocess& p, const Augment& a,
                  uint64_t rng_seed) {
  data::check_preprocess(p);
  Tensor t(DType::kF32, p.nhwc ? Shape{p.size, p.size, 3} : Shape{3, p.size, p.size});
  load_image_into(path, p, a, rng_seed, t.data<float>());
  return t;
}

}  // namespace graft
