// Shared between the TF.js importer's files: JSON access with clear errors,
// the decoded weights, and the builder that accumulates the graph.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "graft/graph.h"

namespace graft::tfjs {

using json = nlohmann::json;

// --- JSON access; a missing or mistyped field is kCorruption naming it ------

const json& member(const json& obj, const std::string& key);
// nullptr when the key is absent or null.
const json* find_member(const json& obj, const std::string& key);
int64_t int_field(const json& obj, const std::string& key, std::optional<int64_t> fallback = {});
double number_field(const json& obj, const std::string& key, std::optional<double> fallback = {});
bool bool_field(const json& obj, const std::string& key, std::optional<bool> fallback = {});
std::string string_field(const json& obj, const std::string& key,
                         std::optional<std::string> fallback = {});
int64_t as_int(const json& v, const std::string& what);
std::vector<int64_t> as_int_list(const json& v, const std::string& what);
// A Keras 2-D size: one int for both dimensions, or [rows, cols].
std::vector<int64_t> pair_field(const json& obj, const std::string& key,
                                std::optional<int64_t> fallback = {});

// --- graph building ----------------------------------------------------------

// A Keras tensor in the graph being built: the value holding it and its shape
// in Keras' order ([batch, H, W, C] for images; -1 where unknown). Rank-4
// values are stored NCHW in the graph.
struct KTensor {
  std::string value;
  Shape shape;
  int rank() const { return static_cast<int>(shape.size()); }
};

// The weights decoded from the manifest, by name.
class WeightStore {
 public:
  void add(const std::string& name, Tensor t);
  // The weight `layer/suffix` (or one named "<scope>/layer/suffix") as a
  // float32 tensor of `shape`; kCorruption naming it when it is missing or its
  // shape differs. Marks it used; `name_out` receives its manifest name.
  Tensor take(const std::string& layer, const std::string& suffix, const Shape& shape,
              std::string* name_out);
  std::vector<std::string> unused() const;

 private:
  std::map<std::string, Tensor> by_name_;
  std::set<std::string> used_;
};

// Reads every group of `weightsManifest` (files relative to `dir`) into
// `store`; optimizer weights are skipped.
void read_weights_manifest(const json& manifest, const std::string& dir, WeightStore& store);

class GraphBuilder {
 public:
  Graph graph;
  WeightStore weights;
  // Graph values that hold a graph input (in NCHW when rank 4), and the
  // classes of the layers that read them (for graft.input_range).
  std::set<std::string> input_values;
  std::vector<std::string> input_consumers;

  // `wanted` if no value, node or initializer has that name yet, otherwise
  // `wanted` with a numeric suffix; reserves the name.
  std::string claim(const std::string& wanted);
  bool claimed(const std::string& name) const { return names_.count(name) != 0; }
  // Adds a node named as its single output; returns the output.
  std::string add_node(const std::string& op, std::vector<std::string> inputs,
                       const std::string& output, std::map<std::string, Attribute> attrs = {});
  // Adds an initializer, or reuses it when a shared layer already added it.
  std::string add_initializer(const std::string& name, const Tensor& value);

 private:
  std::set<std::string> names_;
};

// One call of a (non-model) layer: its config, inputs and output value name.
struct LayerCall {
  std::string name;        // the Keras layer name
  std::string class_name;  // "Conv2D", ...
  const json* config = nullptr;
  std::string output;  // value name of the layer's output in this call
  std::vector<KTensor> inputs;
};

// Emits the nodes of one layer call; kUnsupported naming the class for a
// layer graft does not import.
KTensor emit_layer(GraphBuilder& b, const LayerCall& call);

// Keras axis (may be negative) of a rank-`rank` tensor -> graph axis.
int64_t graph_axis(int64_t keras_axis, int rank);

}  // namespace graft::tfjs
