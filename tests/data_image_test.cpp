// Image decoding (JPEG, PNG, greyscale, CMYK, alpha, EXIF orientation, DCT
// scaling), every bad-input error, the resampler against a slow obvious
// reference, and the transforms.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "data/transform.h"
#include "graft/image.h"
#include "test_util.h"

using namespace graft;
using namespace graft::test;

namespace {

std::string fixture(const std::string& name) {
  return std::string(GRAFT_TEST_DATA) + "/images/" + name;
}

// The picture scripts/make_image_fixtures.py draws: a gradient, a red block
// top-left, a blue block bottom-right.
Image scene() {
  Image im;
  im.width = 64;
  im.height = 48;
  im.pixels.resize(64 * 48 * 3);
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 64; ++x) {
      uint8_t* p = &im.pixels[(y * 64 + x) * 3];
      p[0] = uint8_t(40 + 2 * x), p[1] = uint8_t(60 + 3 * y), p[2] = 120;
      if (x < 12 && y < 8) p[0] = 230, p[1] = 20, p[2] = 20;
      if (x >= 52 && y >= 40) p[0] = 20, p[1] = 20, p[2] = 230;
    }
  return im;
}

const uint8_t* pixel(const Image& im, int x, int y) { return im.row(y) + x * 3; }

int max_diff(const Image& a, const Image& b) {
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  if (a.pixels.size() != b.pixels.size()) return 999;
  int m = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) m = std::max(m, std::abs(a.pixels[i] - b.pixels[i]));
  return m;
}

double mean_diff(const Image& a, const Image& b) {
  double s = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) s += std::abs(a.pixels[i] - b.pixels[i]);
  return s / double(a.pixels.size());
}

}  // namespace

TEST(Decode, PngIsExact) {
  EXPECT_EQ(max_diff(decode_image_file(fixture("rgb.png")), scene()), 0);
  EXPECT_EQ(max_diff(decode_image_file(fixture("interlaced.png")), scene()), 0);
}

TEST(Decode, JpegMatchesPil) {
  // *.pil.png: PIL's decoding of the same files (the same libjpeg-turbo).
  for (const char* name : {"rgb", "grey", "cmyk", "orient6"}) {
    Image im = decode_image_file(fixture(std::string(name) + ".jpg"));
    Image pil = decode_image_file(fixture(std::string(name) + ".pil.png"));
    EXPECT_LE(max_diff(im, pil), 1) << name;
  }
  EXPECT_LT(mean_diff(decode_image_file(fixture("rgb.jpg")), scene()), 2.0);
}

TEST(Decode, GreyscaleBecomesRgb) {
  for (const char* name : {"grey.png", "grey.jpg", "grey16.png"}) {
    Image im = decode_image_file(fixture(name));
    ASSERT_EQ(im.width, 64) << name;
    Image ref = scene();
    double err = 0;
    for (int y = 0; y < 48; ++y)
      for (int x = 0; x < 64; ++x) {
        const uint8_t* p = pixel(im, x, y);
        EXPECT_EQ(p[0], p[1]);
        EXPECT_EQ(p[0], p[2]);
        const uint8_t* r = pixel(ref, x, y);
        err += std::abs(p[0] - (0.299 * r[0] + 0.587 * r[1] + 0.114 * r[2]));
      }
    EXPECT_LT(err / (64 * 48), 2.0) << name;
  }
  EXPECT_EQ(
      max_diff(decode_image_file(fixture("grey16.png")), decode_image_file(fixture("grey.png"))),
      0);
}

TEST(Decode, CmykBecomesRgb) {
  Image im = decode_image_file(fixture("cmyk.jpg"));
  EXPECT_LT(mean_diff(im, scene()), 3.0);
}

TEST(Decode, AlphaIsCompositedOnTheBackground) {
  Image ref = scene();
  Image white = decode_image_file(fixture("rgba.png"));
  DecodeOptions black_bg;
  black_bg.background = {0, 0, 0};
  Image black = decode_image(read_image_file(fixture("rgba.png")), "rgba.png", black_bg);
  for (int y = 0; y < 48; ++y) {
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(pixel(white, 5, y)[c], pixel(ref, 5, y)[c]);  // opaque
      EXPECT_EQ(pixel(white, 40, y)[c], 255);                 // transparent
      EXPECT_EQ(pixel(black, 40, y)[c], 0);
      int v = pixel(ref, 31, y)[c];  // alpha 128
      EXPECT_EQ(pixel(white, 31, y)[c], (v * 128 + 255 * 127 + 127) / 255);
      EXPECT_EQ(pixel(black, 31, y)[c], (v * 128 + 127) / 255);
    }
  }
  Image la = decode_image_file(fixture("grey_alpha.png"));
  EXPECT_EQ(pixel(la, 40, 3)[0], 255);
  EXPECT_EQ(pixel(la, 3, 20)[0], pixel(la, 3, 20)[2]);
  Image pal = decode_image(read_image_file(fixture("palette.png")), "palette.png", black_bg);
  EXPECT_EQ(pal.width, 8);
  EXPECT_EQ(pixel(pal, 1, 1)[0], 0);  // transparent index over black
  EXPECT_EQ(pixel(pal, 6, 6)[0], 200);
  EXPECT_EQ(pixel(pal, 6, 6)[1], 100);
  EXPECT_EQ(pixel(pal, 6, 6)[2], 50);
}

TEST(Decode, ExifOrientationIsApplied) {
  for (int o = 1; o <= 8; ++o) {
    std::string name = fixture("orient" + std::to_string(o) + ".png");
    ImageInfo info = probe_image(read_image_file(name), name);
    EXPECT_EQ(info.orientation, o);
    EXPECT_EQ(info.width, 64) << o;
    EXPECT_EQ(info.height, 48) << o;
    EXPECT_EQ(max_diff(decode_image_file(name), scene()), 0) << "orientation " << o;
  }
  std::string jpg = fixture("orient6.jpg");
  ImageInfo info = probe_image(read_image_file(jpg), jpg);
  EXPECT_EQ(info.orientation, 6);
  EXPECT_EQ(info.width, 64);
  EXPECT_TRUE(info.is_jpeg);
  EXPECT_LT(mean_diff(decode_image_file(jpg), scene()), 2.0);
}

TEST(Decode, ExifParserToleratesGarbage) {
  const uint8_t big[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12,
                         0,   3,   0, 0,  0, 1, 0, 6, 0, 0, 0,    0};
  EXPECT_EQ(exif_orientation(big, sizeof big), 6);
  const uint8_t little[] = {'I',  'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12,
                            0x01, 3,   0,  1, 0, 0, 0, 3, 0, 0, 0};
  EXPECT_EQ(exif_orientation(little, sizeof little), 3);
  EXPECT_EQ(exif_orientation(little, 12), 1);  // cut short
  const uint8_t bad_offset[] = {'I', 'I', 42, 0, 0xff, 0xff, 0, 0};
  EXPECT_EQ(exif_orientation(bad_offset, sizeof bad_offset), 1);
  const uint8_t nine[] = {'I',  'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12,
                          0x01, 3,   0,  1, 0, 0, 0, 9, 0, 0, 0};
  EXPECT_EQ(exif_orientation(nine, sizeof nine), 1);
}

TEST(Decode, JpegDecodesAtTheSmallestCoveringDctScale) {
  std::string bytes = read_image_file(fixture("rgb.jpg"));
  auto decoded = [&](int w, int h, bool all = false) {
    DecodeOptions o;
    o.min_width = w;
    o.min_height = h;
    o.all_dct_scales = all;
    Image im = decode_image(bytes, "rgb.jpg", o);
    return std::pair(im.width, im.height);
  };
  EXPECT_EQ(decoded(0, 0), std::pair(64, 48));
  EXPECT_EQ(decoded(8, 6), std::pair(8, 6));           // 1/8
  EXPECT_EQ(decoded(16, 12), std::pair(16, 12));       // 2/8
  EXPECT_EQ(decoded(17, 1), std::pair(32, 24));        // 4/8: 3/8 is skipped by default
  EXPECT_EQ(decoded(17, 1, true), std::pair(24, 18));  // 3/8
  EXPECT_EQ(decoded(1, 37), std::pair(64, 48));        // 8/8
  EXPECT_EQ(decoded(1, 37, true), std::pair(56, 42));  // 7/8
  EXPECT_EQ(decoded(100, 100), std::pair(64, 48));     // never above full size
  // The minimum is in displayed pixels: orient6.jpg is stored 48x64.
  DecodeOptions o;
  o.min_width = 16;
  o.min_height = 12;
  Image im = decode_image(read_image_file(fixture("orient6.jpg")), "orient6.jpg", o);
  EXPECT_EQ(im.width, 16);
  EXPECT_EQ(im.height, 12);
  // A scaled decode is a shrunken picture: the red block stays top-left.
  EXPECT_GT(pixel(im, 1, 1)[0], 150);
  EXPECT_LT(pixel(im, 1, 1)[2], 100);
}

TEST(Decode, BadInputErrorsNameTheFile) {
  expect_error([] { decode_image_file(fixture("missing.jpg")); }, ErrorKind::kNotFound,
               "missing.jpg: cannot open image");
  expect_error([] { decode_image_file(fixture("truncated.jpg")); }, ErrorKind::kCorruption,
               "truncated.jpg: bad JPEG");
  expect_error([] { decode_image_file(fixture("truncated.png")); }, ErrorKind::kCorruption,
               "truncated.png: bad PNG");
  expect_error([] { decode_image_file(fixture("corrupt.jpg")); }, ErrorKind::kCorruption,
               "corrupt.jpg: bad JPEG");
  expect_error([] { decode_image_file(fixture("corrupt.png")); }, ErrorKind::kCorruption,
               "corrupt.png: bad PNG");
  expect_error([] { decode_image_file(fixture("not_image.jpg")); }, ErrorKind::kCorruption,
               "not_image.jpg: not a JPEG or PNG image");
  expect_error([] { decode_image(std::string(), "empty.png"); }, ErrorKind::kCorruption,
               "empty.png: empty file");
  expect_error([] { decode_image_file(fixture("tiny.gif")); }, ErrorKind::kUnsupported,
               "tiny.gif: GIF images are not supported");
  // TIFF's magics hold a NUL: both byte orders are named, and a file that
  // merely starts with "MM" or "II" is not taken for one.
  using namespace std::string_literals;
  expect_error([] { decode_image("MM\0*\0\0\0\x08"s, "big.tif"); }, ErrorKind::kUnsupported,
               "big.tif: TIFF images are not supported");
  expect_error([] { decode_image("II*\0\x08\0\0\0"s, "little.tif"); }, ErrorKind::kUnsupported,
               "little.tif: TIFF images are not supported");
  expect_error([] { decode_image("MMAP notes"s, "mm.jpg"); }, ErrorKind::kCorruption,
               "mm.jpg: not a JPEG or PNG image");
  expect_error([] { decode_image("II*x"s, "ii.jpg"); }, ErrorKind::kCorruption,
               "ii.jpg: not a JPEG or PNG image");
  expect_error([] { decode_image_file(fixture("bomb.png")); }, ErrorKind::kInvalidArgument,
               "bomb.png: image declares 100000x100000 = 10000000000 pixels, above the limit");
  expect_error([] { decode_image_file(fixture("bomb.jpg")); }, ErrorKind::kInvalidArgument,
               "bomb.jpg: image declares 60000x60000");
  expect_error([] { probe_image(read_image_file(fixture("bomb.jpg")), "bomb.jpg"); },
               ErrorKind::kInvalidArgument, "decompression bomb");
  DecodeOptions small;
  small.max_pixels = 1000;
  expect_error([&] { decode_image(read_image_file(fixture("rgb.png")), "rgb.png", small); },
               ErrorKind::kInvalidArgument, "64x48 = 3072 pixels, above the limit of 1000");
  Preprocess p;
  p.max_pixels = 1000;
  expect_error([&] { load_image(fixture("rgb.jpg"), p); }, ErrorKind::kInvalidArgument,
               "rgb.jpg: image declares 64x48");
}

// --- resampling -------------------------------------------------------------

namespace {

double triangle(double x) { return std::max(0.0, 1.0 - std::abs(x)); }

// The obvious definition: every output pixel is the normalised sum, over
// every source pixel, of the source value times the triangle filter's
// weight along x and along y (widened by the scale when shrinking).
std::vector<float> reference_resample(const Image& src, const Box& b, int ow, int oh) {
  std::vector<float> out(size_t(ow) * oh * 3);
  double sx = b.w / ow, sy = b.h / oh;
  double rx = std::max(sx, 1.0), ry = std::max(sy, 1.0);
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox) {
      double cx = b.x + (ox + 0.5) * sx, cy = b.y + (oy + 0.5) * sy;
      double acc[3] = {0, 0, 0}, total = 0;
      for (int y = 0; y < src.height; ++y)
        for (int x = 0; x < src.width; ++x) {
          double w = triangle((x + 0.5 - cx) / rx) * triangle((y + 0.5 - cy) / ry);
          total += w;
          for (int c = 0; c < 3; ++c) acc[c] += w * pixel(src, x, y)[c];
        }
      for (int c = 0; c < 3; ++c) out[(size_t(oy) * ow + ox) * 3 + c] = float(acc[c] / total);
    }
  return out;
}

Image random_image(int w, int h, unsigned seed) {
  std::mt19937 gen(seed);
  Image im;
  im.width = w;
  im.height = h;
  im.pixels.resize(size_t(w) * h * 3);
  for (auto& v : im.pixels) v = uint8_t(gen() & 255);
  return im;
}

}  // namespace

TEST(Resample, MatchesTheSlowReference) {
  Image src = random_image(37, 29, 1);
  struct Case {
    Box box;
    int ow, oh;
  };
  const Case cases[] = {
      {{0, 0, 37, 29}, 11, 7},            // strong shrink
      {{0, 0, 37, 29}, 30, 20},           // mild shrink
      {{0, 0, 37, 29}, 80, 61},           // enlarge
      {{3.5, 2.25, 20.5, 17.75}, 9, 13},  // fractional crop, mixed
      {{10, 5, 8, 8}, 24, 24},            // crop and enlarge
      {{0, 0, 37, 29}, 37, 29},           // identity
  };
  for (const Case& c : cases) {
    std::vector<float> fast(size_t(c.ow) * c.oh * 3);
    resample(src, c.box, c.ow, c.oh, fast.data());
    std::vector<float> slow = reference_resample(src, c.box, c.ow, c.oh);
    double worst = 0;
    for (size_t i = 0; i < fast.size(); ++i) {
      const double d = std::abs(fast[i] - slow[i]);
      if (std::isnan(d) || d > worst) worst = d;  // std::max would drop a NaN
    }
    EXPECT_LT(worst, 1e-3) << c.ow << "x" << c.oh;
  }
}

TEST(Resample, IdentityIsExactAndConstantsStayConstant) {
  Image src = random_image(9, 7, 2);
  std::vector<float> out(9 * 7 * 3);
  resample(src, {0, 0, 9, 7}, 9, 7, out.data());
  for (size_t i = 0; i < out.size(); ++i) EXPECT_FLOAT_EQ(out[i], src.pixels[i]);
  Image flat = src;
  std::fill(flat.pixels.begin(), flat.pixels.end(), 77);
  std::vector<float> small(5 * 3 * 3);
  resample(flat, {0.3, 0.1, 8.1, 6.5}, 5, 3, small.data());
  for (float v : small) EXPECT_NEAR(v, 77.0f, 1e-4);
}

TEST(Resample, ShrinkingAveragesAwayAliasing) {
  // A one-pixel checkerboard shrunk 4x is flat grey with antialiasing
  // (a plain two-tap bilinear filter would keep stripes).
  Image src;
  src.width = src.height = 64;
  src.pixels.resize(64 * 64 * 3);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c) src.pixels[(y * 64 + x) * 3 + c] = ((x + y) % 2) ? 255 : 0;
  std::vector<float> out(16 * 16 * 3);
  resample(src, {0, 0, 64, 64}, 16, 16, out.data());
  for (size_t i = 0; i < out.size(); ++i) {
    int ox = int(i / 3) % 16, oy = int(i / 3) / 16;
    if (ox > 0 && oy > 0 && ox < 15 && oy < 15) {
      EXPECT_NEAR(out[i], 127.5f, 1.0f);
    }
  }
}

// --- transforms -------------------------------------------------------------

TEST(Transform, CentreCropBoxIsResizeThenCrop) {
  Preprocess p;  // 224, 0.875: shorter side to 256
  Box b = crop_box(500, 375, p, {}, 0);
  // 500x375 -> 341x256, crop left round(58.5) = 59, top 16.
  EXPECT_NEAR(b.x, 59 * 500.0 / 341, 1e-9);
  EXPECT_NEAR(b.y, 16 * 375.0 / 256, 1e-9);
  EXPECT_NEAR(b.w, 224 * 500.0 / 341, 1e-9);
  EXPECT_NEAR(b.h, 224 * 375.0 / 256, 1e-9);
  Box tall = crop_box(300, 600, p, {}, 0);
  EXPECT_NEAR(tall.w, 224 * 300.0 / 256, 1e-9);
  p.keep_aspect = false;
  Box exact = crop_box(500, 375, p, {}, 0);
  EXPECT_NEAR(exact.x, 16 * 500.0 / 256, 1e-9);
  EXPECT_NEAR(exact.w, 224 * 500.0 / 256, 1e-9);
}

TEST(Transform, RandomResizedCropStaysInBoundsAndRange) {
  Augment a;
  a.enabled = true;
  a.min_crop_area = 0.35f;
  Preprocess p;
  int fallbacks = 0;
  for (uint64_t seed = 0; seed < 500; ++seed) {
    Box b = crop_box(500, 375, p, a, seed);
    EXPECT_GE(b.x, 0);
    EXPECT_GE(b.y, 0);
    EXPECT_LE(b.x + b.w, 500);
    EXPECT_LE(b.y + b.h, 375);
    double area = b.w * b.h / (500.0 * 375);
    if (area == 1.0) {
      ++fallbacks;
      continue;
    }
    EXPECT_GE(area, 0.34);
    EXPECT_GE(b.w / b.h, 0.74);
    EXPECT_LE(b.w / b.h, 1.34);
  }
  EXPECT_LT(fallbacks, 50);
  Box b1 = crop_box(500, 375, p, a, 42), b2 = crop_box(500, 375, p, a, 42);
  EXPECT_EQ(b1.x, b2.x);
  EXPECT_EQ(b1.w, b2.w);
}

TEST(Transform, JitterFactorsInRange) {
  Augment a;
  a.enabled = true;
  a.jitter = 0.2f;
  Preprocess p;
  bool flipped = false, kept = false;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    data::TransformPlan plan = data::plan_transform(64, 48, p, a, seed);
    for (float f : {plan.brightness, plan.contrast, plan.saturation}) {
      EXPECT_GE(f, 0.8f);
      EXPECT_LE(f, 1.2f);
    }
    (plan.flip ? flipped : kept) = true;
  }
  EXPECT_TRUE(flipped && kept);
}

TEST(Transform, LoadImageNormalisesAndCropsExactly) {
  Preprocess p;
  p.size = 48;
  p.crop_fraction = 1.0f;  // 64x48 -> 64x48, centre 48x48 from x = 8
  Tensor t = load_image(fixture("rgb.png"), p);
  ASSERT_EQ(t.shape(), (Shape{3, 48, 48}));
  Image ref = scene();
  const float* v = t.data<float>();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 48; ++y)
      for (int x = 0; x < 48; ++x)
        ASSERT_NEAR(v[(c * 48 + y) * 48 + x], (pixel(ref, x + 8, y)[c] - 127.5f) / 127.5f, 1e-5)
            << c << " " << y << " " << x;
  p.nhwc = true;
  Tensor h = load_image(fixture("rgb.png"), p);
  ASSERT_EQ(h.shape(), (Shape{48, 48, 3}));
  EXPECT_NEAR(h.data<float>()[(5 * 48 + 7) * 3 + 1], v[(1 * 48 + 5) * 48 + 7], 1e-6);
  Preprocess in = Preprocess::imagenet();
  in.size = 48;
  in.crop_fraction = 1.0f;
  Tensor n = load_image(fixture("rgb.png"), in);
  EXPECT_NEAR(n.data<float>()[0], (pixel(ref, 8, 0)[0] / 255.0f - 0.485f) / 0.229f, 1e-5);
  Preprocess half = Preprocess::from_mean_std({0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f});
  for (int c = 0; c < 3; ++c) {
    EXPECT_FLOAT_EQ(half.mean[c], 127.5f);  // the seed's (x - 127.5) / 127.5
    EXPECT_FLOAT_EQ(half.scale[c], 1 / 127.5f);
  }
  expect_error(
      [] {
        Preprocess::from_mean_std({0, 0, 0}, {1, 0, 1});
      },
      ErrorKind::kInvalidArgument, "std must be positive");
}

TEST(Transform, ScaledJpegDecodeMatchesFullDecode) {
  // load_image decodes rgb.jpg at 2/8 scale for 16x16 output; a full decode
  // resampled the same way gives nearly the same picture.
  Preprocess p;
  p.size = 16;
  Tensor fast = load_image(fixture("rgb.jpg"), p);
  Image full = decode_image_file(fixture("rgb.jpg"));
  std::vector<float> rgb(16 * 16 * 3), ref(16 * 16 * 3);
  resample(full, crop_box(64, 48, p, {}, 0), 16, 16, rgb.data());
  data::finish_transform(rgb.data(), {crop_box(64, 48, p, {}, 0)}, p, ref.data());
  double err = 0;
  for (size_t i = 0; i < ref.size(); ++i) err += std::abs(ref[i] - fast.data<float>()[i]);
  EXPECT_LT(err / ref.size() * 127.5, 6.0);  // mean error in 0..255 levels
}

TEST(Transform, AugmentationIsSeededAndFlipMirrors) {
  Preprocess p;
  p.size = 32;
  Augment a;
  a.enabled = true;
  a.min_crop_area = 1.0f;  // whole image (torchvision's fallback): only flip and jitter vary
  a.jitter = 0;
  Tensor plain = load_image(fixture("rgb.png"), p, a, 0);
  bool saw_flip = false;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    Tensor t = load_image(fixture("rgb.png"), p, a, seed);
    bool flip = data::plan_transform(64, 48, p, a, seed).flip;
    bool base_flip = data::plan_transform(64, 48, p, a, 0).flip;
    const float* x = t.data<float>();
    const float* y = plain.data<float>();
    for (int c = 0; c < 3; ++c)
      for (int r = 0; r < 32; ++r)
        for (int col = 0; col < 32; ++col) {
          int mirrored = flip != base_flip ? 31 - col : col;
          ASSERT_FLOAT_EQ(x[(c * 32 + r) * 32 + col], y[(c * 32 + r) * 32 + mirrored]);
        }
    saw_flip |= flip != base_flip;
  }
  EXPECT_TRUE(saw_flip);

  a = Augment{};
  a.enabled = true;
  Tensor t1 = load_image(fixture("rgb.jpg"), p, a, 5), t2 = load_image(fixture("rgb.jpg"), p, a, 5);
  Tensor t3 = load_image(fixture("rgb.jpg"), p, a, 6);
  EXPECT_EQ(t1.to_vector<float>(), t2.to_vector<float>());
  EXPECT_NE(t1.to_vector<float>(), t3.to_vector<float>());
  for (float v : t3.to_vector<float>()) {
    EXPECT_GE(v, -1.0f);
    EXPECT_LE(v, 1.0f);
  }
  // Without augmentation the seed does not matter.
  EXPECT_EQ(load_image(fixture("rgb.jpg"), p, {}, 1).to_vector<float>(),
            load_image(fixture("rgb.jpg"), p, {}, 2).to_vector<float>());
}

TEST(Transform, BadSettings) {
  Preprocess p;
  p.size = 0;
  expect_error([&] { load_image(fixture("rgb.png"), p); }, ErrorKind::kInvalidArgument,
               "size must be in 1..16384");
  p = Preprocess{};
  p.crop_fraction = 1.5f;
  expect_error([&] { load_image(fixture("rgb.png"), p); }, ErrorKind::kInvalidArgument,
               "crop_fraction must be in (0, 1]");
  Augment a;
  a.enabled = true;
  a.min_crop_area = 0;
  expect_error([&] { load_image(fixture("rgb.png"), Preprocess{}, a); },
               ErrorKind::kInvalidArgument, "min_crop_area");
}

TEST(Decode, DamagedFilesFailCleanly) {
  // Bytes flipped or cut anywhere: a clean graft::Error or a picture, never a crash.
  for (const char* name : {"rgb.jpg", "rgb.png", "orient6.jpg", "cmyk.jpg", "palette.png"}) {
    const std::string good = read_image_file(fixture(name));
    std::mt19937 gen(7);
    for (int trial = 0; trial < 150; ++trial) {
      std::string bad = good;
      if (trial % 3 == 0) {
        bad.resize(gen() % bad.size());
      } else {
        for (int k = 0; k < 1 + trial % 4; ++k) bad[gen() % bad.size()] = char(gen() & 255);
      }
      try {
        Image im = decode_image(bad, name);
        EXPECT_EQ(im.pixels.size(), size_t(im.width) * im.height * 3);
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
      }
    }
  }
}
