// Helpers shared by the libFuzzer targets: a private scratch folder for
// targets whose parser reads files, and the one rule every target checks —
// a parser may reject its input only with graft::Error.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "graft/error.h"
#include "graft/tensor.h"

namespace graft::fuzz {

// One folder per process (in /dev/shm when there is one, so that writing an
// input per run stays cheap), created on first use.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base = std::filesystem::exists("/dev/shm")
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    std::filesystem::path d = base / ("graft_fuzz_" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A model may declare tensors of any size; graft refuses those above
// max_tensor_bytes with an error. The fuzzers lower that limit to 256 MiB so
// that a refused size is found well inside libFuzzer's 2 GB malloc limit,
// and an allocation that bypasses the limit shows up as a finding.
inline constexpr size_t kFuzzMaxTensorBytes = size_t{256} << 20;

// Runs `parse`; graft::Error is the expected way to refuse bad input, so it
// is swallowed. Anything else (another exception, a crash, a sanitizer
// report) escapes and is a finding.
template <typename F>
void expect_clean(F&& parse) {
  try {
    parse();
  } catch (const graft::Error&) {
  }
}

}  // namespace graft::fuzz
