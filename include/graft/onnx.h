// Reading ONNX models and tensors into graft's Graph.
#pragma once

#include <string>

#include "graft/graph.h"

namespace graft {

// Loads an ONNX model file (IR versions 3 to 8, default-domain opsets up to
// 17). Weights may be initializers, Constant nodes (turned into
// initializers) or graph inputs that also have initializers (IR 3 style);
// external data files are read relative to the model's folder. Every node is
// checked against graft's op registry. Errors name the file and the node.
Graph load_onnx(const std::string& path);

// The same from bytes in memory; `base_dir` is where external data lives and
// `label` names the source in errors.
Graph parse_onnx(const std::string& bytes, const std::string& base_dir, const std::string& label);

struct OnnxExportOptions {
  bool fold_batch_norm = true;  // fold inference BatchNorms into the Conv before them
};

// Writes `graph` as an ONNX model (IR version 8, the graph's opset), with
// every output's dtype and shape declared and the graph's metadata as
// metadata_props. The file is written atomically.
void save_onnx(const Graph& graph, const std::string& path, const OnnxExportOptions& options = {});

// The same as serialized bytes.
std::string serialize_onnx(const Graph& graph, const OnnxExportOptions& options = {});

// Reads a file holding one serialized onnx.TensorProto (the backend tests'
// input_0.pb). `name_out`, when given, receives the tensor's name.
Tensor load_onnx_tensor(const std::string& path, std::string* name_out = nullptr);

}  // namespace graft
