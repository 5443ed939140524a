// JPEG decoding with libjpeg-turbo. libjpeg reports errors through a
// callback that must not return: it longjmps back to the setjmp in the
// entry point, which turns the message into a graft::Error.
// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <csetjmp>
#include <cstring>
#include <memory>

#include "data/codecs.h"
#include "graft/error.h"

namespace graft::data {

namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// A truncated file or damaged entropy-coded data is only a warning to
// libjpeg (it fills the rest with grey); graft refuses such images.
void on_message(j_common_ptr cinfo, int level) {
  int code = cinfo->err->msg_code;
  if (level == -1 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC))
    on_error(cinfo);
}

struct Decompressor {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  Decompressor() {
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    err.message[0] = 0;
    jpeg_create_decompress(&cinfo);
  }
  ~Decompressor() { jpeg_destroy_decompress(&cinfo); }
};

constexpr int kExifMarker = JPEG_APP0 + 1;

// The EXIF orientation from a saved APP1 "Exif\0\0" marker, else 1.
int orientation_of(const jpeg_decompress_struct& cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
    if (m->marker == kExifMarker && m->data_length > 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0)
      return exif_orientation(m->data + 6, m->data_length - 6);
  return 1;
}

void read_header(Decompressor& d, std::string_view bytes) {
  jpeg_mem_src(&d.cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&d.cinfo, kExifMarker, 0xffff);
  jpeg_read_header(&d.cinfo, TRUE);
}

// Adobe's CMYK JPEGs store inverted values (0 is full ink); plain ones do not.
void cmyk_to_rgb(const uint8_t* cmyk, uint8_t* rgb, int width, bool inverted) {
  for (int x = 0; x < width; ++x, cmyk += 4, rgb += 3) {
    int k = inverted ? cmyk[3] : 255 - cmyk[3];
    for (int c = 0; c < 3; ++c) {
      int v = inverted ? cmyk[c] : 255 - cmyk[c];
      rgb[c] = static_cast<uint8_t>((v * k + 127) / 255);
    }
  }
}

// The smallest k/8 whose output covers min_w×min_h (see DecodeOptions).
void choose_scale(jpeg_decompress_struct& cinfo, int min_w, int min_h, bool all_scales) {
  cinfo.scale_denom = 8;
  cinfo.scale_num = 8;
  if (min_w <= 0 && min_h <= 0) return;
  for (int k = 1; k <= 8; ++k) {
    if (!all_scales && (k & (k - 1)) != 0) continue;  // not a power of two
    cinfo.scale_num = k;
    jpeg_calc_output_dimensions(&cinfo);
    if (int(cinfo.output_width) >= min_w && int(cinfo.output_height) >= min_h) return;
  }
}

[[noreturn]] void fail_decode(const std::string& name, const char* message) {
  fail(ErrorKind::kCorruption, "{}: bad JPEG: {}", name, message);
}

}  // namespace

ImageInfo probe_jpeg(std::string_view bytes, const std::string& name) {
  auto d = std::make_unique<Decompressor>();
  if (setjmp(d->err.jump)) fail_decode(name, d->err.message);
  read_header(*d, bytes);
  ImageInfo info;
  info.width = static_cast<int>(d->cinfo.image_width);
  info.height = static_cast<int>(d->cinfo.image_height);
  info.orientation = orientation_of(d->cinfo);
  info.is_jpeg = true;
  return info;
}

Image decode_jpeg(std::string_view bytes, const std::string& name, const DecodeOptions& o,
                  int* orientation) {
  auto d = std::make_unique<Decompressor>();
  auto image = std::make_unique<Image>();
  auto cmyk_row = std::make_unique<std::vector<uint8_t>>();
  auto rows = std::make_unique<std::vector<JSAMPROW>>();
  if (setjmp(d->err.jump)) fail_decode(name, d->err.message);
  jpeg_decompress_struct& cinfo = d->cinfo;
  read_header(*d, bytes);
  check_pixel_limit(cinfo.image_width, cinfo.image_height, o.max_pixels, name);
  *orientation = orientation_of(cinfo);
  bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;  // libjpeg-turbo expands greyscale to RGB
  choose_scale(cinfo, o.min_width, o.min_height, o.all_dct_scales);
  jpeg_start_decompress(&cinfo);
  image->width = static_cast<int>(cinfo.output_width);
  image->height = static_cast<int>(cinfo.output_height);
  image->pixels.resize(static_cast<size_t>(image->width) * image->height * 3);
  if (cmyk) cmyk_row->resize(static_cast<size_t>(image->width) * 4);
  if (cmyk) {
    while (cinfo.output_scanline < cinfo.output_height) {
      uint8_t* dst = image->pixels.data() + size_t(cinfo.output_scanline) * image->width * 3;
      JSAMPROW row = cmyk_row->data();
      jpeg_read_scanlines(&cinfo, &row, 1);
      cmyk_to_rgb(cmyk_row->data(), dst, image->width, cinfo.saw_Adobe_marker);
    }
  } else {
    // All row pointers at once: libjpeg then writes several rows per call.
    rows->resize(image->height);
    for (int y = 0; y < image->height; ++y)
      (*rows)[y] = image->pixels.data() + size_t(y) * image->width * 3;
    while (cinfo.output_scanline < cinfo.output_height)
      jpeg_read_scanlines(&cinfo, rows->data() + cinfo.output_scanline,
                          cinfo.output_height - cinfo.output_scanline);
  }
  jpeg_finish_decompress(&cinfo);
  return std::move(*image);
}

}  // namespace graft::data
