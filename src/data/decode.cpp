#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "data/codecs.h"
#include "graft/error.h"
#include "graft/image.h"

namespace graft {

namespace data {

void check_pixel_limit(int64_t width, int64_t height, int64_t max_pixels, const std::string& name) {
  GRAFT_CHECK(width > 0 && height > 0, kCorruption, "{}: image declares size {}x{}", name, width,
              height);
  GRAFT_CHECK(width * height <= max_pixels, kInvalidArgument,
              "{}: image declares {}x{} = {} pixels, above the limit of {} (a decompression "
              "bomb?)",
              name, width, height, width * height, max_pixels);
}

}  // namespace data

namespace {

enum class Format { kJpeg, kPng };

bool starts_with(std::string_view bytes, std::string_view magic) {
  return bytes.substr(0, magic.size()) == magic;
}

// The format from the file's first bytes, whatever its name says.
Format sniff(std::string_view bytes, const std::string& name) {
  if (starts_with(bytes, "\xFF\xD8\xFF")) return Format::kJpeg;
  if (starts_with(bytes, "\x89PNG\r\n\x1A\n")) return Format::kPng;
  // substr(8) of a file shorter than 8 bytes would throw std::out_of_range.
  const bool webp = starts_with(bytes, "RIFF") && bytes.size() >= 12 && bytes.substr(8, 4) == "WEBP";
  // The TIFF magics hold a NUL byte: string_view literals keep all 4 bytes
  // (a plain "MM\0*" would stop at the NUL and call any "MM..." file TIFF).
  using namespace std::string_view_literals;
  const bool tiff = starts_with(bytes, "II*\0"sv) || starts_with(bytes, "MM\0*"sv);
  const char* other = starts_with(bytes, "GIF8") ? "GIF"
                      : starts_with(bytes, "BM") ? "BMP"
                      : webp                     ? "WebP"
                      : tiff                     ? "TIFF"
                                                 : nullptr;
  GRAFT_CHECK(other == nullptr, kUnsupported, "{}: {} images are not supported (JPEG and PNG are)",
              name, other);
  GRAFT_CHECK(!bytes.empty(), kCorruption, "{}: empty file, not an image", name);
  fail(ErrorKind::kCorruption, "{}: not a JPEG or PNG image", name);
}

bool swaps_sides(int orientation) { return orientation >= 5 && orientation <= 8; }

uint32_t read_u16(const uint8_t* p, bool big) {
  return big ? (p[0] << 8) | p[1] : (p[1] << 8) | p[0];
}
uint32_t read_u32(const uint8_t* p, bool big) {
  return big ? (uint32_t(p[0]) << 24) | (p[1] << 16) | (p[2] << 8) | p[3]
             : (uint32_t(p[3]) << 24) | (p[2] << 16) | (p[1] << 8) | p[0];
}

}  // namespace

int exif_orientation(const uint8_t* tiff, size_t size) {
  if (size < 8) return 1;
  bool big = tiff[0] == 'M' && tiff[1] == 'M';
  if (!big && !(tiff[0] == 'I' && tiff[1] == 'I')) return 1;
  if (read_u16(tiff + 2, big) != 42) return 1;
  uint32_t ifd = read_u32(tiff + 4, big);
  if (ifd > size - 2) return 1;
  uint32_t count = read_u16(tiff + ifd, big);
  for (uint32_t i = 0; i < count; ++i) {
    size_t entry = size_t(ifd) + 2 + size_t(i) * 12;
    if (entry + 12 > size) return 1;
    const uint8_t* e = tiff + entry;
    if (read_u16(e, big) == 0x0112 && read_u16(e + 2, big) == 3 /* SHORT */) {
      uint32_t value = read_u16(e + 8, big);
      return value >= 1 && value <= 8 ? int(value) : 1;
    }
  }
  return 1;
}

Image apply_orientation(const Image& in, int orientation) {
  if (orientation <= 1 || orientation > 8) return in;
  const int w = in.width, h = in.height;
  Image out;
  out.width = swaps_sides(orientation) ? h : w;
  out.height = swaps_sides(orientation) ? w : h;
  out.pixels.resize(in.pixels.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;  // the stored pixel shown at (x, y)
      switch (orientation) {
        case 2:
          sx = w - 1 - x;
          break;
        case 3:
          sx = w - 1 - x;
          sy = h - 1 - y;
          break;
        case 4:
          sy = h - 1 - y;
          break;
        case 5:
          sx = y;
          sy = x;
          break;
        case 6:
          sx = y;
          sy = h - 1 - x;
          break;
        case 7:
          sx = w - 1 - y;
          sy = h - 1 - x;
          break;
        case 8:
          sx = w - 1 - y;
          sy = x;
          break;
      }
      const uint8_t* s = in.row(sy) + size_t(sx) * 3;
      uint8_t* d = out.pixels.data() + (size_t(y) * out.width + x) * 3;
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
    }
  }
  return out;
}

std::string read_image_file(const std::string& path) {
  // open/read rather than an ifstream: several times faster for small files.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  GRAFT_CHECK(fd >= 0, kNotFound, "{}: cannot open image: {}", path, std::strerror(errno));
  struct stat st;
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  std::string bytes(regular ? size_t(st.st_size) + 1 : 65536, '\0');
  size_t size = 0;
  int err = regular ? 0 : EISDIR;
  while (err == 0) {
    if (size == bytes.size()) bytes.resize(bytes.size() * 2);
    const ssize_t n = ::read(fd, bytes.data() + size, bytes.size() - size);
    if (n < 0 && errno != EINTR) err = errno;
    if (n == 0) break;
    if (n > 0) size += size_t(n);
  }
  ::close(fd);
  GRAFT_CHECK(err == 0, kNotFound, "{}: cannot read image: {}", path, std::strerror(err));
  bytes.resize(size);
  return bytes;
}

ImageInfo probe_image(std::string_view bytes, const std::string& name, int64_t max_pixels) {
  ImageInfo info = sniff(bytes, name) == Format::kJpeg ? data::probe_jpeg(bytes, name)
                                                       : data::probe_png(bytes, name);
  data::check_pixel_limit(info.width, info.height, max_pixels, name);
  if (swaps_sides(info.orientation)) std::swap(info.width, info.height);
  return info;
}

Image decode_image(std::string_view bytes, const std::string& name, const DecodeOptions& o) {
  int orientation = 1;
  Image image;
  if (sniff(bytes, name) == Format::kJpeg) {
    DecodeOptions stored = o;  // the minimum size in stored (un-oriented) pixels
    ImageInfo info = data::probe_jpeg(bytes, name);
    if (swaps_sides(info.orientation)) std::swap(stored.min_width, stored.min_height);
    image = data::decode_jpeg(bytes, name, stored, &orientation);
  } else {
    image = data::decode_png(bytes, name, o, &orientation);
  }
  if (orientation > 1) image = apply_orientation(image, orientation);
  return image;
}

Image decode_image_file(const std::string& path, const DecodeOptions& o) {
  return decode_image(read_image_file(path), path, o);
}

}  // namespace graft
