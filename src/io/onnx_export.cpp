#include <onnx/onnx_pb.h>

#include "graft/file.h"
#include "graft/onnx.h"
#include "graft/passes.h"
#include "graft/session.h"

namespace graft {

namespace {

int onnx_dtype(DType t) {
  using TP = onnx::TensorProto;
  switch (t) {
    case DType::kF32: return TP::FLOAT;
    case DType::kF64: return TP::DOUBLE;
    case DType::kF16: return TP::FLOAT16;
    case DType::kI64: return TP::INT64;
    case DType::kI32: return TP::INT32;
    case DType::kI8: return TP::INT8;
    case DType::kU8: return TP::UINT8;
    case DType::kBool: return TP::BOOL;
  }
  return TP::UNDEFINED;
}

void to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
  p->set_name(name);
  p->set_data_type(onnx_dtype(t.dtype()));
  for (int64_t d : t.shape()) p->add_dims(d);
  p->set_raw_data(std::string(static_cast<const char*>(t.raw()), t.nbytes()));  // little-endian
}

void to_proto(const std::string& key, const Attribute& value, onnx::AttributeProto* a) {
  using AP = onnx::AttributeProto;
  a->set_name(key);
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, int64_t>) {
          a->set_type(AP::INT);
          a->set_i(v);
        } else if constexpr (std::is_same_v<V, float>) {
          a->set_type(AP::FLOAT);
          a->set_f(v);
        } else if constexpr (std::is_same_v<V, std::string>) {
          a->set_type(AP::STRING);
          a->set_s(v);
        } else if constexpr (std::is_same_v<V, std::vector<int64_t>>) {
          a->set_type(AP::INTS);
          for (int64_t x : v) a->add_ints(x);
        } else if constexpr (std::is_same_v<V, std::vector<float>>) {
          a->set_type(AP::FLOATS);
          for (float x : v) a->add_floats(x);
        } else if constexpr (std::is_same_v<V, std::vector<std::string>>) {
          a->set_type(AP::STRINGS);
          for (const std::string& x : v) a->add_strings(x);
        } else {
          a->set_type(AP::TENSOR);
          to_proto(v, "", a->mutable_t());
        }
      },
      value);
}

void to_proto(const ValueDecl& d, onnx::ValueInfoProto* v) {
  v->set_name(d.name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx_dtype(d.dtype));
  if (!d.shape) return;
  auto* shape = tt->mutable_shape();
  for (const Dim& dim : *d.shape) {
    auto* x = shape->add_dim();
    if (dim.value >= 0) x->set_dim_value(dim.value);
    else if (!dim.symbol.empty()) x->set_dim_param(dim.symbol);
  }
}

// Writes auto_pad SAME_UPPER/SAME_LOWER of Conv and pooling nodes as explicit
// pads for the inferred input sizes: ONNX Runtime, for one, rejects SAME
// with dilations, and explicit pads mean the same in every runtime.
void make_pads_explicit(Graph& g, const std::map<std::string, ValueInfo>& infos) {
  for (Node& n : g.nodes) {
    if (n.op_type != "Conv" && n.op_type != "AveragePool" && n.op_type != "MaxPool") continue;
    const std::string mode = n.attr_string("auto_pad", "NOTSET");
    if (mode != "SAME_UPPER" && mode != "SAME_LOWER") continue;
    const Shape& x = infos.at(n.inputs[0]).shape;
    const size_t spatial = x.size() - 2;
    std::vector<int64_t> kernel = n.attr_ints("kernel_shape");
    if (kernel.empty() && n.op_type == "Conv") {
      const Shape& w = infos.at(n.inputs[1]).shape;
      kernel.assign(w.begin() + 2, w.end());
    }
    std::vector<int64_t> strides = n.attr_ints("strides", std::vector<int64_t>(spatial, 1));
    std::vector<int64_t> dilations = n.attr_ints("dilations", std::vector<int64_t>(spatial, 1));
    if (kernel.size() != spatial) continue;
    std::vector<int64_t> pads(2 * spatial);
    for (size_t i = 0; i < spatial; ++i) {
      int64_t in = x[2 + i], s = strides[i];
      int64_t out = (in + s - 1) / s;
      int64_t total = std::max<int64_t>((out - 1) * s + (kernel[i] - 1) * dilations[i] + 1 - in, 0);
      int64_t small = total / 2;
      pads[i] = mode == "SAME_UPPER" ? small : total - small;
      pads[i + spatial] = total - pads[i];
    }
    n.attrs.erase("auto_pad");
    n.attrs["pads"] = pads;
  }
}

}  // namespace

std::string serialize_onnx(const Graph& original, const OnnxExportOptions& options) {
  Graph g = original;
  if (options.fold_batch_norm) fold_batch_norms(g);
  // Declare every output's dtype and shape, keeping declared symbolic dims.
  auto infos = infer_shapes(g, resolve_input_shapes(g, {}, 1));
  make_pads_explicit(g, infos);
  for (ValueDecl& out : g.outputs) {
    const ValueInfo& info = infos.at(out.name);
    out.dtype = info.dtype;
    if (out.shape && out.shape->size() == info.shape.size()) continue;
    out.shape = std::vector<Dim>();
    for (size_t i = 0; i < info.shape.size(); ++i)
      out.shape->push_back(i == 0 && !g.inputs.empty() ? Dim{-1, "batch"} : Dim{info.shape[i], ""});
  }

  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("graft");
  m.set_producer_version("0.1");
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(std::max(g.opset, 7));
  for (const auto& [k, v] : g.metadata) {
    auto* p = m.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  onnx::GraphProto* gp = m.mutable_graph();
  gp->set_name(g.name.empty() ? "graft" : g.name);
  for (const ValueDecl& in : g.inputs) to_proto(in, gp->add_input());
  for (const ValueDecl& out : g.outputs) to_proto(out, gp->add_output());
  for (const auto& [name, t] : g.initializers) to_proto(t, name, gp->add_initializer());
  for (const Node& n : g.nodes) {
    onnx::NodeProto* np = gp->add_node();
    np->set_name(n.name);
    np->set_op_type(n.op_type);
    for (const std::string& in : n.inputs) np->add_input(in);
    for (const std::string& out : n.outputs) np->add_output(out);
    for (const auto& [key, value] : n.attrs) to_proto(key, value, np->add_attribute());
  }
  std::string bytes;
  GRAFT_CHECK(m.SerializeToString(&bytes), kInvalidArgument,
              "the model cannot be serialized (over protobuf's 2 GiB limit?)");
  return bytes;
}

void save_onnx(const Graph& graph, const std::string& path, const OnnxExportOptions& options) {
  write_file_atomically(path, serialize_onnx(graph, options));
}

}  // namespace graft
