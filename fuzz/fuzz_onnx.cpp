// libFuzzer target: graft::parse_onnx on arbitrary bytes (the ONNX importer:
// protobuf parse, tensors, attributes, op registry checks, shape inference
// and the constant folding it runs). External data is looked up in an empty
// scratch folder.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "graft/onnx.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  graft::set_max_tensor_bytes(graft::fuzz::kFuzzMaxTensorBytes);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  graft::fuzz::expect_clean([&] {
    graft::parse_onnx(bytes, graft::fuzz::scratch_dir().string(), "fuzz.onnx");
  });
  return 0;
}
