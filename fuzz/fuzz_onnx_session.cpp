// libFuzzer target: an ONNX model as a user loads it to run — parse_onnx, a
// Session on the graph, then shape inference for the declared input shapes
// (symbolic dimensions 1), which checks every node's inputs and folds the
// nodes whose inputs are all constant by running their reference kernels.
// The graph itself is not run. (fuzz_onnx stops after parsing, so it is
// faster and reaches deeper into the protobuf handling.)
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
    graft::Graph g = graft::parse_onnx(bytes, graft::fuzz::scratch_dir().string(), "fuzz.onnx");
    graft::Session session(g);
    graft::infer_shapes(g, graft::resolve_input_shapes(g, {}, 1));
  });
  return 0;
}
