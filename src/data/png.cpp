// PNG decoding with libpng. Like libjpeg, libpng reports errors through a
// callback that must not return; it longjmps to the setjmp below.
#include <png.h>

#include <csetjmp>
#include <cstring>
#include <memory>

#include "data/codecs.h"
#include "graft/error.h"

namespace graft::data {

namespace {

struct Reader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::string_view bytes;
  size_t offset = 0;
  char message[256] = {0};

  Reader() {
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, this, on_error, on_warning);
    if (png) info = png_create_info_struct(png);
    GRAFT_CHECK(png && info, kInternal, "libpng: out of memory");
    png_set_read_fn(png, this, on_read);
    // graft's own pixel limit (check_pixel_limit) decides, with a clearer message.
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  }
  ~Reader() { png_destroy_read_struct(&png, &info, nullptr); }

  static void on_error(png_structp png, png_const_charp message) {
    auto* r = static_cast<Reader*>(png_get_error_ptr(png));
    std::snprintf(r->message, sizeof r->message, "%s", message);
    png_longjmp(png, 1);
  }
  static void on_warning(png_structp, png_const_charp) {}
  static void on_read(png_structp png, png_bytep out, size_t n) {
    auto* r = static_cast<Reader*>(png_get_io_ptr(png));
    if (r->bytes.size() - r->offset < n) png_error(png, "file is truncated");
    std::memcpy(out, r->bytes.data() + r->offset, n);
    r->offset += n;
  }
};

int orientation_of(Reader& r) {
#ifdef PNG_eXIf_SUPPORTED
  png_bytep exif = nullptr;
  png_uint_32 size = 0;
  if (png_get_eXIf_1(r.png, r.info, &size, &exif) && exif) return exif_orientation(exif, size);
#endif
  return 1;
}

[[noreturn]] void fail_decode(const std::string& name, const char* message) {
  fail(ErrorKind::kCorruption, "{}: bad PNG: {}", name, message);
}

// out = alpha * colour + (1 - alpha) * background, rounded.
void composite(const uint8_t* rgba, uint8_t* rgb, size_t pixels, const std::array<uint8_t, 3>& bg) {
  for (size_t i = 0; i < pixels; ++i, rgba += 4, rgb += 3) {
    int a = rgba[3];
    for (int c = 0; c < 3; ++c)
      rgb[c] = static_cast<uint8_t>((rgba[c] * a + bg[c] * (255 - a) + 127) / 255);
  }
}

}  // namespace

ImageInfo probe_png(std::string_view bytes, const std::string& name) {
  auto r = std::make_unique<Reader>();
  r->bytes = bytes;
  if (setjmp(png_jmpbuf(r->png))) fail_decode(name, r->message);
  png_read_info(r->png, r->info);
  ImageInfo info;
  info.width = static_cast<int>(png_get_image_width(r->png, r->info));
  info.height = static_cast<int>(png_get_image_height(r->png, r->info));
  info.orientation = orientation_of(*r);
  return info;
}

Image decode_png(std::string_view bytes, const std::string& name, const DecodeOptions& o,
                 int* orientation) {
  auto r = std::make_unique<Reader>();
  auto image = std::make_unique<Image>();
  auto rgba = std::make_unique<std::vector<uint8_t>>();
  auto rows = std::make_unique<std::vector<png_bytep>>();
  r->bytes = bytes;
  if (setjmp(png_jmpbuf(r->png))) fail_decode(name, r->message);
  png_structp png = r->png;
  png_read_info(png, r->info);
  png_uint_32 width = png_get_image_width(png, r->info);
  png_uint_32 height = png_get_image_height(png, r->info);
  check_pixel_limit(width, height, o.max_pixels, name);
  *orientation = orientation_of(*r);

  // Everything to 8-bit RGB or RGBA.
  png_set_expand(png);  // palette -> RGB, low-bit grey -> 8 bits, tRNS -> alpha
  png_set_strip_16(png);
  png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, r->info);
  int channels = png_get_channels(png, r->info);
  GRAFT_ASSERT(channels == 3 || channels == 4);

  image->width = static_cast<int>(width);
  image->height = static_cast<int>(height);
  image->pixels.resize(size_t(width) * height * 3);
  uint8_t* base = image->pixels.data();
  if (channels == 4) {
    rgba->resize(size_t(width) * height * 4);
    base = rgba->data();
  }
  rows->resize(height);
  for (png_uint_32 y = 0; y < height; ++y) (*rows)[y] = base + size_t(y) * width * channels;
  png_read_image(png, rows->data());
  png_read_end(png, nullptr);
  if (channels == 4)
    composite(rgba->data(), image->pixels.data(), size_t(width) * height, o.background);
  return std::move(*image);
}

}  // namespace graft::data
