// PNG encoding with libpng, into memory. libpng reports errors through a
// callback that must not return; it longjmps to the setjmp below, so every
// object that owns memory lives outside the function that calls setjmp.
#include <png.h>

#include <csetjmp>
#include <cstdio>

#include "graft/error.h"
#include "graft/report.h"

namespace graft {

namespace {

struct Writer {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::string out;
  char message[256] = {0};

  Writer() {
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, this, on_error, on_warning);
    if (png) info = png_create_info_struct(png);
    GRAFT_CHECK(png && info, kInternal, "libpng: out of memory");
    png_set_write_fn(png, this, on_write, nullptr);
  }
  ~Writer() { png_destroy_write_struct(&png, &info); }

  static void on_error(png_structp png, png_const_charp message) {
    auto* w = static_cast<Writer*>(png_get_error_ptr(png));
    std::snprintf(w->message, sizeof w->message, "%s", message);
    png_longjmp(png, 1);
  }
  static void on_warning(png_structp, png_const_charp) {}
  static void on_write(png_structp png, png_bytep data, size_t n) {
    static_cast<Writer*>(png_get_io_ptr(png))->out.append(reinterpret_cast<char*>(data), n);
  }
};

// No locals with destructors between setjmp and a possible longjmp.
void write_rows(Writer& w, const Image& image, png_bytep* rows) {
  if (setjmp(png_jmpbuf(w.png))) fail(ErrorKind::kInternal, "PNG encoding failed: {}", w.message);
  png_set_IHDR(w.png, w.info, image.width, image.height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(w.png, w.info);
  png_write_image(w.png, rows);
  png_write_end(w.png, nullptr);
}

}  // namespace

std::string encode_png(const Image& image) {
  GRAFT_CHECK(image.width > 0 && image.height > 0 &&
                  image.pixels.size() == size_t(image.width) * image.height * 3,
              kInvalidArgument, "cannot encode a {}x{} image with {} bytes as PNG", image.width,
              image.height, image.pixels.size());
  Writer w;
  std::vector<png_bytep> rows(image.height);
  for (int y = 0; y < image.height; ++y) rows[y] = const_cast<png_bytep>(image.row(y));
  write_rows(w, image, rows.data());
  return std::move(w.out);
}

}  // namespace graft
