// Reading TensorFlow.js layers models (model.json + binary weight shards, as
// the TF.js converter and Teachable Machine write them) into graft's Graph.
#pragma once

#include <string>

#include "graft/graph.h"

namespace graft {

// Loads a TF.js layers model: `model.json` holds `modelTopology` (a Keras
// model config: Functional, Sequential, nested models; Keras 2 inbound_nodes)
// and `weightsManifest` (groups of weight files, read relative to the JSON's
// folder; float32, float16, int32 and uint8/uint16/float16-quantized values).
//
// The graph uses ONNX opset 13 ops. Its image input keeps Keras' NHWC layout
// [batch, H, W, C] and is transposed to NCHW right after; rank-4 values inside
// the graph are NCHW, and rank-4 graph outputs are transposed back to NHWC.
// Each Keras layer's output value (and the node producing it) is named as the
// layer, so a model can be cut at e.g. `block_10_project_BN`; the values
// inside a layer that expands into several nodes are named `layer/suffix`.
// graph.metadata states the expected input: `graft.input_layout` (`NHWC` for
// an image input) and `graft.input_range` (`0..255` when the model starts
// with a Rescaling layer, else `0..1`, TF.js's convention).
//
// Errors name the file, layer or weight: kNotFound for a missing file,
// kCorruption for malformed JSON, truncated weights or a manifest that does
// not fit the topology, kUnsupported for a layer or setting graft lacks.
Graph load_tfjs(const std::string& model_json_path);

}  // namespace graft
