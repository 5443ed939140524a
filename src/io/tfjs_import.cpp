// TF.js layers models: model.json's Keras topology (Functional, Sequential,
// nested models, shared layers) becomes graft nodes layer by layer
// (tfjs_layers.cpp, tfjs_conv_layers.cpp); the weights manifest
// (tfjs_weights.cpp) becomes initializers.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "graft/session.h"
#include "graft/tfjs.h"
#include "io/tfjs_internal.h"

namespace graft {

namespace fs = std::filesystem;

namespace tfjs {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  GRAFT_CHECK(f.good(), kNotFound, "cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  GRAFT_CHECK(!f.bad(), kIO, "read failed");
  return ss.str();
}

// --- the topology ----------------------------------------------------------------

bool is_model_class(const std::string& c) {
  return c == "Model" || c == "Functional" || c == "Sequential";
}

const json& sequential_layers(const json& config) {
  return config.is_array() ? config : member(config, "layers");
}

// The name of a layer entry: Functional lists it beside the config, Sequential inside.
std::string layer_name(const json& layer) {
  if (const json* n = find_member(layer, "name")) {
    GRAFT_CHECK(n->is_string(), kCorruption, "a layer name must be a string");
    return n->get<std::string>();
  }
  return string_field(member(layer, "config"), "name");
}

// A reference to a layer's output: [layer, node_index, tensor_index, kwargs].
struct Ref {
  std::string layer;
  int64_t node = 0, tensor = 0;
};

Ref parse_ref(const json& r) {
  GRAFT_CHECK(r.is_array() && r.size() >= 3 && r[0].is_string(), kUnsupported,
              "inbound reference {} is not in Keras 2 form [layer, node, tensor, kwargs]",
              r.dump());
  return {r[0].get<std::string>(), as_int(r[1], "node_index"), as_int(r[2], "tensor_index")};
}

// A nested model's own node (linking its inputs to its outputs) usually
// counts as its node 0, so the calls listed in its inbound_nodes are
// referenced from node 1 on (Keras' and TF.js' node_conversion_map); Keras
// 2.4+ omits that node for a Sequential without an input shape. The
// references tell which: one to node 0, or one to node n (n calls listed).
int node_offset(const std::string& name, size_t calls, const std::vector<Ref>& refs) {
  bool zero = false, past = false;
  for (const Ref& r : refs) {
    if (r.layer != name) continue;
    zero = zero || r.node == 0;
    past = past || r.node == static_cast<int64_t>(calls);
  }
  GRAFT_CHECK(!(zero && past), kCorruption, "references to layer '{}' use nodes 0 and {}", name,
              calls);
  return zero ? 0 : 1;
}

class ModelBuilder {
 public:
  explicit ModelBuilder(GraphBuilder& b) : b_(b) {}

  // Builds a model entry ({class_name, config}) applied to `inputs`; with no
  // inputs (the top level) its input layers become graph inputs.
  std::vector<KTensor> build(const json& model, const std::vector<KTensor>& inputs,
                             const std::string& scope) {
    std::string c = string_field(model, "class_name");
    const json& config = member(model, "config");
    if (c == "Sequential") return build_sequential(config, inputs, scope);
    return build_functional(config, inputs, scope);
  }

 private:
  std::vector<KTensor> build_sequential(const json& config, const std::vector<KTensor>& inputs,
                                        const std::string& scope) {
    const json& layers = sequential_layers(config);
    GRAFT_CHECK(layers.is_array() && !layers.empty(), kCorruption,
                "a Sequential model has no layers");
    KTensor x;
    if (!inputs.empty()) {
      GRAFT_CHECK(inputs.size() == 1, kCorruption, "a Sequential model takes 1 input, got {}",
                  inputs.size());
      x = inputs[0];
    } else {
      const json& first = layers[0];
      const json& cfg = member(first, "config");
      bool input_layer = string_field(first, "class_name") == "InputLayer";
      GRAFT_CHECK(input_layer || find_member(cfg, "batch_input_shape"), kUnsupported,
                  "the Sequential model's first layer does not declare its input shape");
      x = graph_input(input_layer ? layer_name(first) : layer_name(first) + "_input", cfg);
    }
    for (size_t i = 0; i < layers.size(); ++i) {
      const json& layer = layers[i];
      if (string_field(layer, "class_name") == "InputLayer") {
        GRAFT_CHECK(i == 0, kCorruption, "InputLayer '{}' is not the first layer",
                    layer_name(layer));
        continue;
      }
      std::vector<KTensor> out = call_layer(layer, {x}, 0, scope);
      GRAFT_CHECK(out.size() == 1, kUnsupported, "layer '{}' of a Sequential model has {} outputs",
                  layer_name(layer), out.size());
      x = out[0];
    }
    return {x};
  }

  std::vector<KTensor> build_functional(const json& config, const std::vector<KTensor>& inputs,
                                        const std::string& scope) {
    const json& layers = member(config, "layers");
    GRAFT_CHECK(layers.is_array(), kCorruption, "'layers' must be a list");
    std::map<std::string, const json*> by_name;
    for (const json& l : layers) {
      std::string name = layer_name(l);
      GRAFT_CHECK(by_name.emplace(name, &l).second, kCorruption, "two layers are named '{}'", name);
    }
    // Outputs available so far, by (layer, node index as references count).
    std::map<std::pair<std::string, int64_t>, std::vector<KTensor>> ready;
    const json& input_refs = member(config, "input_layers");
    GRAFT_CHECK(input_refs.is_array() && (inputs.empty() || inputs.size() == input_refs.size()),
                kCorruption, "the model has {} inputs but is given {}", input_refs.size(),
                inputs.size());
    for (size_t i = 0; i < input_refs.size(); ++i) {
      Ref r = parse_ref(input_refs[i]);
      auto it = by_name.find(r.layer);
      GRAFT_CHECK(it != by_name.end() && string_field(*it->second, "class_name") == "InputLayer",
                  kCorruption, "input '{}' is not an InputLayer of the model", r.layer);
      ready[{r.layer, 0}] = {inputs.empty() ? graph_input(r.layer, member(*it->second, "config"))
                                            : inputs[i]};
    }
    // Layer calls in the order listed; a call waits until its inputs exist
    // (a shared layer may be listed before some of its inputs).
    struct Call {
      const json* layer;
      std::string name;
      int64_t index;  // into inbound_nodes
      int64_t node;   // as references count it
    };
    std::vector<Ref> all_refs;
    for (const json& oj : member(config, "output_layers")) all_refs.push_back(parse_ref(oj));
    for (const json& l : layers)
      if (const json* nodes = find_member(l, "inbound_nodes"); nodes && nodes->is_array())
        for (const json& node : *nodes)
          if (node.is_array())
            for (const json& rj : node) all_refs.push_back(parse_ref(rj));
    std::vector<Call> pending;
    for (const json& l : layers) {
      std::string name = layer_name(l);
      if (string_field(l, "class_name") == "InputLayer") continue;
      const json& nodes = member(l, "inbound_nodes");
      GRAFT_CHECK(nodes.is_array(), kCorruption, "layer '{}': 'inbound_nodes' must be a list",
                  name);
      int offset = is_model_class(string_field(l, "class_name"))
                       ? node_offset(name, nodes.size(), all_refs)
                       : 0;
      for (size_t k = 0; k < nodes.size(); ++k)
        pending.push_back({&l, name, static_cast<int64_t>(k), static_cast<int64_t>(k) + offset});
    }
    while (!pending.empty()) {
      std::vector<Call> waiting;
      for (const Call& c : pending) {
        const json& refs = (*c.layer)["inbound_nodes"][c.index];
        GRAFT_CHECK(refs.is_array(), kUnsupported,
                    "layer '{}': inbound node {} is not in Keras 2 form (a list of references)",
                    c.name, refs.dump());
        std::vector<KTensor> args;
        bool have_all = true;
        for (const json& rj : refs) {
          Ref r = with_context(fmt::format("layer '{}'", c.name), [&] { return parse_ref(rj); });
          auto it = ready.find({r.layer, r.node});
          if (it == ready.end()) {
            have_all = false;
            break;
          }
          GRAFT_CHECK(r.tensor >= 0 && r.tensor < static_cast<int64_t>(it->second.size()),
                      kCorruption, "layer '{}': layer '{}' has no output {}", c.name, r.layer,
                      r.tensor);
          args.push_back(it->second[r.tensor]);
        }
        if (!have_all) {
          waiting.push_back(c);
          continue;
        }
        ready[{c.name, c.node}] = call_layer(*c.layer, args, c.index, scope);
      }
      if (waiting.size() == pending.size()) {
        const Call& c = waiting.front();
        for (const json& rj : (*c.layer)["inbound_nodes"][c.index]) {
          Ref r = parse_ref(rj);
          GRAFT_CHECK(ready.count({r.layer, r.node}), kCorruption,
                      "layer '{}' reads output {} of layer '{}', which the model does not define",
                      c.name, r.node, r.layer);
        }
      }
      pending = std::move(waiting);
    }
    std::vector<KTensor> outputs;
    for (const json& oj : member(config, "output_layers")) {
      Ref r = parse_ref(oj);
      auto it = ready.find({r.layer, r.node});
      GRAFT_CHECK(
          it != ready.end() && r.tensor >= 0 && r.tensor < static_cast<int64_t>(it->second.size()),
          kCorruption, "output [{}, {}, {}] is not defined by the model", r.layer, r.node,
          r.tensor);
      outputs.push_back(it->second[r.tensor]);
    }
    GRAFT_CHECK(!outputs.empty(), kCorruption, "the model has no outputs");
    return outputs;
  }

  // Call `index` of a layer on `args`: a nested model is built in place (its
  // outputs then pass through Identity nodes named as the nested model).
  std::vector<KTensor> call_layer(const json& layer, const std::vector<KTensor>& args,
                                  int64_t index, const std::string& scope) {
    std::string name = layer_name(layer);
    std::string cls = string_field(layer, "class_name");
    return with_context(fmt::format("layer '{}' ({})", name, cls), [&] {
      std::string base = index == 0 ? name : fmt::format("{}/call{}", name, index);
      base = b_.claimed(base) && !scope.empty() ? b_.claim(scope + "/" + base) : b_.claim(base);
      for (const KTensor& a : args)
        if (b_.input_values.count(a.value)) b_.input_consumers.push_back(cls);
      if (is_model_class(cls)) {
        GRAFT_CHECK(++depth_ < 64, kUnsupported, "models nested more than 64 deep");
        std::vector<KTensor> inner = build(layer, args, base);
        --depth_;
        std::vector<KTensor> out;
        for (size_t i = 0; i < inner.size(); ++i) {
          std::string v = i == 0 ? base : b_.claim(fmt::format("{}/output{}", base, i));
          out.push_back({b_.add_node("Identity", {inner[i].value}, v), inner[i].shape});
        }
        return out;
      }
      LayerCall call{name, cls, &member(layer, "config"), base, args};
      return std::vector<KTensor>{emit_layer(b_, call)};
    });
  }

  // A graph input from an InputLayer (or a first layer's) config; images are
  // transposed to NCHW right away.
  KTensor graph_input(const std::string& name, const json& cfg) {
    return with_context(fmt::format("input '{}'", name), [&] {
      const json* shape_json = find_member(cfg, "batch_input_shape");
      if (!shape_json) shape_json = &member(cfg, "batch_shape");
      GRAFT_CHECK(shape_json->is_array() && !shape_json->empty(), kCorruption,
                  "batch_input_shape must be a list");
      std::string dtype = string_field(cfg, "dtype", std::string("float32"));
      GRAFT_CHECK(dtype == "float32", kUnsupported, "input dtype '{}' is not supported (float32)",
                  dtype);
      ValueDecl decl{b_.claim(name), DType::kF32, std::vector<Dim>{}};
      Shape shape;
      size_t rank = shape_json->size();
      for (size_t i = 0; i < rank; ++i) {
        const json& d = (*shape_json)[i];
        int64_t v = d.is_null() ? -1 : as_int(d, "batch_input_shape");
        GRAFT_CHECK(d.is_null() || v > 0, kCorruption, "dimension {} must be positive", v);
        std::string symbol = i == 0               ? "batch"
                             : rank == 4 && i < 3 ? (i == 1 ? "height" : "width")
                                                  : fmt::format("dim{}", i);
        decl.shape->push_back(v < 0 ? Dim{-1, symbol} : Dim{v, ""});
        shape.push_back(v);
      }
      shape[0] = -1;
      decl.shape->at(0) = Dim{-1, "batch"};
      b_.graph.inputs.push_back(decl);
      std::string value = decl.name;
      if (rank == 4)
        value = b_.add_node("Transpose", {value}, b_.claim(name + "/nchw"),
                            {{"perm", Attribute{std::vector<int64_t>{0, 3, 1, 2}}}});
      b_.input_values.insert(value);
      return KTensor{value, shape};
    });
  }

  GraphBuilder& b_;
  int depth_ = 0;
};

// A rank-4 output leaves the graph in Keras' NHWC layout: the NCHW value is
// renamed "<name>/nchw" and a Transpose writes `<name>`.
void add_output(GraphBuilder& b, const KTensor& out) {
  for (const ValueDecl& d : b.graph.outputs)
    if (d.name == out.value) return;
  if (out.rank() == 4) {
    std::string nchw = b.claim(out.value + "/nchw");
    for (Node& n : b.graph.nodes) {
      if (n.name == out.value) n.name = nchw;
      for (std::string& v : n.inputs)
        if (v == out.value) v = nchw;
      for (std::string& v : n.outputs)
        if (v == out.value) v = nchw;
    }
    b.add_node("Transpose", {nchw}, out.value,
               {{"perm", Attribute{std::vector<int64_t>{0, 2, 3, 1}}}});
  }
  ValueDecl decl{out.value, DType::kF32, std::vector<Dim>{}};
  for (size_t i = 0; i < out.shape.size(); ++i)
    decl.shape->push_back(i == 0             ? Dim{-1, "batch"}
                          : out.shape[i] < 0 ? Dim{-1, fmt::format("{}_dim{}", out.value, i)}
                                             : Dim{out.shape[i], ""});
  b.graph.outputs.push_back(decl);
}

Graph build_graph(const json& root, const fs::path& dir) {
  const json& topology = member(root, "modelTopology");
  std::string format = string_field(root, "format", std::string("layers-model"));
  GRAFT_CHECK(format == "layers-model" && !find_member(topology, "node"), kUnsupported,
              "this is a TF.js graph model ('{}'); only layers models are supported", format);
  const json& model =
      find_member(topology, "model_config") ? member(topology, "model_config") : topology;
  std::string cls = string_field(model, "class_name");
  GRAFT_CHECK(is_model_class(cls), kUnsupported,
              "the topology is a '{}', not a Model, Functional or Sequential", cls);

  GraphBuilder b;
  if (const json* manifest = find_member(root, "weightsManifest"))
    read_weights_manifest(*manifest, dir.string(), b.weights);
  const json& config = member(model, "config");
  std::string name =
      config.is_object() ? string_field(config, "name", std::string("model")) : "model";
  std::vector<KTensor> outputs = ModelBuilder(b).build(model, {}, "");
  for (const KTensor& o : outputs) add_output(b, o);

  std::vector<std::string> unused = b.weights.unused();
  GRAFT_CHECK(unused.empty(), kCorruption, "weight '{}' in the manifest belongs to no layer",
              unused.empty() ? "" : unused[0]);
  Graph& g = b.graph;
  g.name = name;
  g.opset = 13;
  if (!g.inputs.empty() && g.inputs[0].shape && g.inputs[0].shape->size() == 4)
    g.metadata["graft.input_layout"] = "NHWC";
  bool rescales = std::find(b.input_consumers.begin(), b.input_consumers.end(), "Rescaling") !=
                  b.input_consumers.end();
  g.metadata["graft.input_range"] = rescales ? "0..255" : "0..1";
  g.sort_topologically();
  validate_ops(g);
  return std::move(b.graph);
}

}  // namespace
}  // namespace tfjs

Graph load_tfjs(const std::string& model_json_path) {
  return with_context(model_json_path, [&] {
    std::string text = tfjs::read_text(model_json_path);
    try {
      tfjs::json root = tfjs::json::parse(text);
      GRAFT_CHECK(root.is_object(), kCorruption, "the file does not hold a JSON object");
      return tfjs::build_graph(root, fs::path(model_json_path).parent_path());
    } catch (const tfjs::json::exception& e) {
      fail(ErrorKind::kCorruption, "malformed JSON: {}", e.what());
    }
  });
}

}  // namespace graft
