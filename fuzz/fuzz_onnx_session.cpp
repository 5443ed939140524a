// libFuzzer target: an ONNX model as a user loads it to run — parse_onnx and
// then a Session on the graph, which checks every node, infers every shape
// and folds the nodes whose inputs are all constant by running their
// reference kernels. (fuzz_onnx stops after parsing, so it is faster and
// reaches deeper into the protobuf handling.)
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "graft/onnx.h"
#include "graft/session.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  graft::set_max_tensor_bytes(graft::fuzz::kFuzzMaxTensorBytes);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  graft::fuzz::expect_clean([&] {
    graft::Session session(
        graft::parse_onnx(bytes, graft::fuzz::scratch_dir().string(), "fuzz.onnx"));
  });
  return 0;
}
