// What the TF.js importer's layer emitters share: the Emit context, input
// checks, activations. Private to src/io/tfjs_*.cpp.
#pragma once

#include <functional>

#include "io/tfjs_internal.h"

namespace graft::tfjs {

using Attrs = std::map<std::string, Attribute>;

inline Attribute ints(std::vector<int64_t> v) { return Attribute{std::move(v)}; }

// What a layer's emitter works with.
struct Emit {
  GraphBuilder& b;
  const LayerCall& call;
  const json& cfg;

  const KTensor& in(size_t i = 0) const { return call.inputs.at(i); }
  // A fresh name for a value inside the layer: "<output>/<suffix>".
  std::string value(const std::string& suffix) const { return b.claim(call.output + "/" + suffix); }
  std::string node(const std::string& op, std::vector<std::string> inputs, const std::string& out,
                   Attrs attrs = {}) const {
    return b.add_node(op, std::move(inputs), out, std::move(attrs));
  }
  // A constant of the layer ("<layer>/<what>"), shared by all its calls.
  std::string constant(const std::string& what, const Tensor& t) const {
    return b.add_initializer(call.name + "/" + what, t);
  }
  // The layer's weight `<layer>/<suffix>` of Keras shape `shape`, converted by
  // `convert` and stored as an initializer under its manifest name.
  std::string weight(const std::string& suffix, const Shape& shape,
                     const std::function<Tensor(const Tensor&)>& convert = {}) const {
    std::string name;
    Tensor t = b.weights.take(call.name, suffix, shape, &name);
    return b.add_initializer(name, convert ? convert(t) : t);
  }
};

// Keras shape for messages: "[None, 224, 224, 3]".
std::string keras_shape_str(const Shape& s);
// kCorruption unless the call has min..max inputs.
void expect_inputs(const Emit& e, size_t min, size_t max);
void expect_rank(const KTensor& t, int rank);
void expect_channels_last(const json& cfg);
// The last (channel) dimension, which must be known.
int64_t known_channels(const KTensor& t);
Tensor scalar_f32(double v);

// The layer's `activation` field, canonical ("hard_sigmoid" -> "hardsigmoid").
std::string activation_of(const json& cfg);
// Writes act(x) to `out`. `rank` picks softmax's axis (Keras: the last one).
void emit_activation(const Emit& e, const std::string& act, const std::string& x,
                     const std::string& out, int rank);
// Where a layer's main op writes: straight to the layer's output when no
// activation follows, else "<output>/<suffix>".
std::string pre_activation(const Emit& e, const std::string& act, const std::string& suffix);
void finish_activation(const Emit& e, const std::string& act, const std::string& pre, int rank);

// The windowed layers (tfjs_conv_layers.cpp).
KTensor conv2d(const Emit& e);
KTensor depthwise_conv2d(const Emit& e);
KTensor separable_conv2d(const Emit& e);
KTensor zero_padding2d(const Emit& e);
KTensor pooling2d(const Emit& e, const std::string& op);
KTensor global_pooling2d(const Emit& e, const std::string& op);

}  // namespace graft::tfjs
