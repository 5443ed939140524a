// libFuzzer target: the JPEG and PNG decoding path — graft::probe_image and
// graft::decode_image on arbitrary bytes, at full size and with a small
// target size (which makes JPEG decode at a reduced DCT scale). The pixel
// limit is lowered to 4M so that a header declaring a huge image is refused
// before the fuzzer's memory limit is reached; a limit that is not obeyed
// shows up as an out-of-memory finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "graft/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  constexpr int64_t kMaxPixels = 4'000'000;
  graft::fuzz::expect_clean([&] { graft::probe_image(bytes, "fuzz", kMaxPixels); });
  graft::DecodeOptions full;
  full.max_pixels = kMaxPixels;
  graft::fuzz::expect_clean([&] { graft::decode_image(bytes, "fuzz", full); });
  graft::DecodeOptions scaled = full;
  scaled.min_width = 32;
  scaled.min_height = 32;
  scaled.all_dct_scales = (size & 1) != 0;
  graft::fuzz::expect_clean([&] { graft::decode_image(bytes, "fuzz", scaled); });
  return 0;
}
