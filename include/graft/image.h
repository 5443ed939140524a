// Decoding and transforming images into model inputs.
//
// Decoding: JPEG through libjpeg-turbo, decoded straight at the smallest DCT
// scale that still covers the size asked for (1/8, 1/4, 1/2 or 1 by default,
// see DecodeOptions::all_dct_scales); PNG through libpng with
// alpha composited on a background colour; greyscale, palette and CMYK
// become RGB; the EXIF orientation tag (JPEG APP1, PNG eXIf) is applied.
// Every error names the file: kNotFound (cannot open), kCorruption (not an
// image, truncated, corrupt), kUnsupported (another image format), and
// kInvalidArgument for an image whose declared size is above the pixel limit
// (a decompression bomb), checked before anything is allocated.
//
// Transforms: resize (shorter side or exact) with a bilinear filter widened
// when shrinking (antialiasing), centre crop by a fraction, random resized
// crop, horizontal flip, light colour jitter and normalisation, all drawn
// from a seed so the same seed gives the same tensor.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "graft/tensor.h"

namespace graft {

// 8-bit RGB, rows top to bottom, pixels interleaved (R, G, B).
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3

  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * width * 3; }
};

inline constexpr int64_t kDefaultMaxPixels = 100'000'000;

struct DecodeOptions {
  std::array<uint8_t, 3> background = {255, 255, 255};  // under transparent pixels
  int64_t max_pixels = kDefaultMaxPixels;               // declared width * height above: error
  // JPEG only: decode at the smallest DCT scale k/8 whose (oriented) result
  // is at least this large; 0 decodes at full size.
  int min_width = 0;
  int min_height = 0;
  // Consider only the scales 1/8, 2/8, 4/8 and 8/8, which libjpeg-turbo
  // decodes with SIMD code; the others (3/8, 5/8, 6/8, 7/8) use its plain C
  // IDCTs (with 6x6..14x14 chroma blocks) and were measured here slower
  // than a full-size decode (500x375 photos: 6/8 at 1550/s against 8/8 at
  // 2000/s), so by default they are skipped.
  bool all_dct_scales = false;
};

// What the file's header declares, after EXIF orientation (a photo taken
// upright on its side reports its displayed width and height).
struct ImageInfo {
  int width = 0;
  int height = 0;
  int orientation = 1;  // EXIF orientation 1..8; 1 when absent
  bool is_jpeg = false;
};

// The whole file's bytes; kNotFound naming the file if it cannot be read.
std::string read_image_file(const std::string& path);
// `name` is the file name errors carry.
ImageInfo probe_image(std::string_view bytes, const std::string& name,
                      int64_t max_pixels = kDefaultMaxPixels);
Image decode_image(std::string_view bytes, const std::string& name, const DecodeOptions& o = {});
Image decode_image_file(const std::string& path, const DecodeOptions& o = {});

// Applies an EXIF orientation (1..8) to decoded pixels.
Image apply_orientation(const Image& image, int orientation);
// The orientation stored in an EXIF (TIFF) block; 1 when absent or unreadable.
int exif_orientation(const uint8_t* tiff, size_t size);

// What the model expects.
struct Preprocess {
  int64_t size = 224;  // output H = W
  float crop_fraction =
      0.875f;  // resize shorter side to size / crop_fraction, centre crop size×size
  std::array<float, 3> mean = {127.5f, 127.5f, 127.5f};               // on 0..255 values
  std::array<float, 3> scale = {1 / 127.5f, 1 / 127.5f, 1 / 127.5f};  // out = (x - mean) * scale
  bool nhwc = false;                                                  // TF.js models take NHWC
  std::array<uint8_t, 3> background = {255, 255, 255};                // for transparent PNGs
  bool keep_aspect = true;  // false: stretch both sides to size / crop_fraction ("exact")
  int64_t max_pixels = kDefaultMaxPixels;  // decompression-bomb limit (not part of any cache key)

  // Normalisation by mean and standard deviation given on 0..1 values, as
  // torchvision writes it: out = (x / 255 - mean) / std.
  static Preprocess from_mean_std(std::array<float, 3> mean, std::array<float, 3> std);
  // torchvision's ImageNet normalisation: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
  static Preprocess imagenet();
};

// Training-time augmentation; when enabled, a random resized crop replaces
// the centre crop.
struct Augment {
  bool enabled = false;
  float min_crop_area =
      0.35f;            // random resized crop: area fraction in [min, 1], aspect in [3/4, 4/3]
  bool hflip = true;    // flip left-right with probability 1/2
  float jitter = 0.1f;  // brightness, contrast, saturation factors in [1 - j, 1 + j]
};

// A region of an image in its pixel coordinates (fractional).
struct Box {
  double x = 0, y = 0, w = 0, h = 0;
};

// The part of a width×height image that becomes the output: the centre crop
// of the resized image (p.crop_fraction), or with augmentation a random
// resized crop drawn from `rng_seed`.
Box crop_box(int width, int height, const Preprocess& p, const Augment& a, uint64_t rng_seed);

// Resamples `box` of `src` to out_w×out_h float RGB values (0..255,
// interleaved) with a bilinear (triangle) filter, widened by the scale when
// shrinking so every source pixel contributes (antialiasing). Taps outside
// the image are dropped and the weights renormalised.
void resample(const Image& src, const Box& box, int out_w, int out_h, float* out);

// Decodes and transforms one image into a float32 [3,H,W] (or [H,W,3])
// tensor; `rng_seed` drives augmentation. Errors name the file.
Tensor load_image(const std::string& path, const Preprocess& p, const Augment& a = {},
                  uint64_t rng_seed = 0);
// The same, written to `out` (size*size*3 floats, in p's layout).
void load_image_into(const std::string& path, const Preprocess& p, const Augment& a,
                     uint64_t rng_seed, float* out);

}  // namespace graft
