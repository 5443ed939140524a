// libFuzzer target: graft::load_tfjs. An input is a model.json text, then a
// NUL byte, then the bytes of its one weights file, which is written as
// `w.bin` next to it (scripts/make_fuzz_seeds.py merges each fixture's
// shards into that one file and points the manifest at it). Without a NUL
// the whole input is the JSON and there are no weights.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "graft/tfjs.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  graft::set_max_tensor_bytes(graft::fuzz::kFuzzMaxTensorBytes);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nul = input.find('\0');
  std::string_view json = input.substr(0, nul);
  std::string_view weights = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  const auto& dir = graft::fuzz::scratch_dir();
  graft::fuzz::write_file(dir / "model.json", json);
  graft::fuzz::write_file(dir / "w.bin", weights);
  graft::fuzz::expect_clean([&] { graft::load_tfjs((dir / "model.json").string()); });
  return 0;
}
