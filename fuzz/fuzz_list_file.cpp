// libFuzzer target: graft::read_list_file on arbitrary bytes written to a
// scratch list file (once with num_classes inferred, once with a fixed 4).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "graft/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& dir = graft::fuzz::scratch_dir();
  auto list = (dir / "list.txt").string();
  graft::fuzz::write_file(list, std::string_view(reinterpret_cast<const char*>(data), size));
  graft::fuzz::expect_clean([&] { graft::read_list_file(dir.string(), list); });
  graft::fuzz::expect_clean([&] { graft::read_list_file(dir.string(), list, 4); });
  return 0;
}
