// The JPEG and PNG decoders behind decode_image (graft/image.h).
#pragma once

#include <string>
#include <string_view>

#include "graft/image.h"

namespace graft::data {

// Header only: declared (stored, un-oriented) size and EXIF orientation.
ImageInfo probe_jpeg(std::string_view bytes, const std::string& name);
ImageInfo probe_png(std::string_view bytes, const std::string& name);

// Pixels as stored (orientation not applied); `orientation` receives the
// EXIF orientation. For JPEG, o.min_width/min_height are in stored
// (un-oriented) pixels.
Image decode_jpeg(std::string_view bytes, const std::string& name, const DecodeOptions& o,
                  int* orientation);
Image decode_png(std::string_view bytes, const std::string& name, const DecodeOptions& o,
                 int* orientation);

// Throws kInvalidArgument when width * height is above the limit.
void check_pixel_limit(int64_t width, int64_t height, int64_t max_pixels, const std::string& name);

}  // namespace graft::data
