#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "graft/file.h"
#include "graft/onnx.h"
#include "graft/session.h"

namespace graft {

namespace fs = std::filesystem;

namespace {

constexpr int kMinIrVersion = 3, kMaxIrVersion = 8, kMaxOpset = 17;

DType dtype_from_onnx(int elem_type) {
  using TP = onnx::TensorProto;
  switch (elem_type) {
    case TP::FLOAT: return DType::kF32;
    case TP::DOUBLE: return DType::kF64;
    case TP::FLOAT16: return DType::kF16;
    case TP::INT64: return DType::kI64;
    case TP::INT32: return DType::kI32;
    case TP::INT8: return DType::kI8;
    case TP::UINT8: return DType::kU8;
    case TP::BOOL: return DType::kBool;
    default: break;
  }
  const auto* desc = TP::DataType_descriptor()->FindValueByNumber(elem_type);
  fail(ErrorKind::kUnsupported, "element type {} is not supported",
       desc ? desc->name() : std::to_string(elem_type));
}

// Copies `count` values from a repeated proto field into the tensor, checking
// the count matches.
template <typename T, typename Field>
void copy_field(Tensor& t, const Field& field, const std::string& what) {
  GRAFT_CHECK(static_cast<int64_t>(field.size()) == t.numel(), kCorruption,
              "{} holds {} values but its shape {} needs {}", what, field.size(),
              shape_str(t.shape()), t.numel());
  T* p = t.data<T>();
  for (int i = 0; i < field.size(); ++i) p[i] = static_cast<T>(field.Get(i));
}

std::string read_external(const onnx::TensorProto& proto, const std::string& base_dir,
                          size_t expected_bytes) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : proto.external_data()) {
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") offset = std::stoll(kv.value());
    else if (kv.key() == "length") length = std::stoll(kv.value());
  }
  GRAFT_CHECK(!location.empty(), kCorruption, "external data has no location");
  fs::path rel(location);
  GRAFT_CHECK(rel.is_relative() && location.find("..") == std::string::npos, kCorruption,
              "external data location '{}' must be a relative path inside the model's folder",
              location);
  fs::path path = fs::path(base_dir) / rel;
  std::error_code ec;
  auto file_size = fs::file_size(path, ec);
  GRAFT_CHECK(!ec, kNotFound, "external data file '{}' cannot be read", path.string());
  if (length < 0) length = static_cast<int64_t>(expected_bytes);
  GRAFT_CHECK(offset >= 0 && static_cast<uint64_t>(offset + length) <= file_size, kCorruption,
              "external data '{}' is {} bytes, too short for {} bytes at offset {}", path.string(),
              file_size, length, offset);
  GRAFT_CHECK(static_cast<size_t>(length) == expected_bytes, kCorruption,
              "external data gives {} bytes, the tensor needs {}", length, expected_bytes);
  std::ifstream f(path, std::ios::binary);
  std::string bytes(static_cast<size_t>(length), '\0');
  f.seekg(offset);
  f.read(bytes.data(), length);
  GRAFT_CHECK(f.good(), kIO, "reading external data '{}' failed", path.string());
  return bytes;
}

Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& base_dir) {
  return with_context(fmt::format("tensor '{}'", proto.name()), [&] {
    using TP = onnx::TensorProto;
    DType dtype = dtype_from_onnx(proto.data_type());
    Shape shape(proto.dims().begin(), proto.dims().end());
    int64_t numel = shape_numel(shape);
    size_t bytes = static_cast<size_t>(numel) * dtype_size(dtype);
    // Check the data present before allocating, so a forged shape cannot
    // make graft allocate more than the file holds.
    std::string external;
    const std::string* raw = nullptr;
    if (proto.data_location() == TP::EXTERNAL) {
      external = read_external(proto, base_dir, bytes);
      raw = &external;
    } else if (proto.has_raw_data()) {
      raw = &proto.raw_data();
      GRAFT_CHECK(raw->size() == bytes, kCorruption,
                  "raw data is {} bytes, shape {} of {} needs {}", raw->size(), shape_str(shape),
                  dtype_name(dtype), bytes);
    } else {
      int64_t present = 0;
      switch (dtype) {
        case DType::kF32: present = proto.float_data_size(); break;
        case DType::kF64: present = proto.double_data_size(); break;
        case DType::kI64: present = proto.int64_data_size(); break;
        default: present = proto.int32_data_size(); break;
      }
      GRAFT_CHECK(present == numel, kCorruption, "holds {} values but its shape {} needs {}",
                  present, shape_str(shape), numel);
    }
    Tensor t(dtype, shape);
    if (raw) {
      if (bytes) std::memcpy(t.raw(), raw->data(), bytes);  // ONNX raw data is little-endian
      if (dtype == DType::kBool)
        for (int64_t i = 0; i < numel; ++i) t.data<bool>()[i] = reinterpret_cast<uint8_t*>(t.raw())[i] != 0;
      return t;
    }
    const std::string what = "typed data";
    switch (dtype) {
      case DType::kF32: copy_field<float>(t, proto.float_data(), what); break;
      case DType::kF64: copy_field<double>(t, proto.double_data(), what); break;
      case DType::kI64: copy_field<int64_t>(t, proto.int64_data(), what); break;
      case DType::kI32: copy_field<int32_t>(t, proto.int32_data(), what); break;
      case DType::kI8: copy_field<int8_t>(t, proto.int32_data(), what); break;
      case DType::kU8: copy_field<uint8_t>(t, proto.int32_data(), what); break;
      case DType::kBool: copy_field<bool>(t, proto.int32_data(), what); break;
      case DType::kF16: {  // float16 bits are stored in int32_data
        GRAFT_CHECK(proto.int32_data_size() == numel, kCorruption, "float16 data count mismatch");
        for (int64_t i = 0; i < numel; ++i)
          t.data<Half>()[i] = Half{static_cast<uint16_t>(proto.int32_data(static_cast<int>(i)))};
        break;
      }
    }
    return t;
  });
}

ValueDecl decl_from_proto(const onnx::ValueInfoProto& v) {
  return with_context(fmt::format("graph value '{}'", v.name()), [&] {
    ValueDecl d;
    d.name = v.name();
    GRAFT_CHECK(v.type().has_tensor_type(), kUnsupported, "only tensor values are supported");
    const auto& tt = v.type().tensor_type();
    d.dtype = dtype_from_onnx(tt.elem_type());
    if (tt.has_shape()) {
      std::vector<Dim> dims;
      for (const auto& dim : tt.shape().dim()) {
        Dim x;
        if (dim.has_dim_value()) {
          GRAFT_CHECK(dim.dim_value() >= 0, kCorruption, "negative dimension {}", dim.dim_value());
          x.value = dim.dim_value();
        } else {
          x.symbol = dim.dim_param();
        }
        dims.push_back(x);
      }
      d.shape = dims;
    }
    return d;
  });
}

Attribute attribute_from_proto(const onnx::AttributeProto& a, const std::string& base_dir) {
  using AP = onnx::AttributeProto;
  auto type = a.type();
  if (type == AP::UNDEFINED) {  // very old files omit the type: infer it from the field set
    if (a.has_f()) type = AP::FLOAT;
    else if (a.has_i()) type = AP::INT;
    else if (a.has_s()) type = AP::STRING;
    else if (a.has_t()) type = AP::TENSOR;
    else if (a.floats_size()) type = AP::FLOATS;
    else if (a.ints_size()) type = AP::INTS;
    else if (a.strings_size()) type = AP::STRINGS;
  }
  switch (type) {
    case AP::FLOAT: return a.f();
    case AP::INT: return static_cast<int64_t>(a.i());
    case AP::STRING: return a.s();
    case AP::TENSOR: return tensor_from_proto(a.t(), base_dir);
    case AP::FLOATS: return std::vector<float>(a.floats().begin(), a.floats().end());
    case AP::INTS: return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case AP::STRINGS: return std::vector<std::string>(a.strings().begin(), a.strings().end());
    default: break;
  }
  fail(ErrorKind::kUnsupported, "attribute '{}' has a type graft does not support ({})", a.name(),
       AP::AttributeType_Name(a.type()));
}

// The value of a Constant node as a tensor.
Tensor constant_value(const Node& n) {
  GRAFT_CHECK(n.attrs.size() == 1, kCorruption, "{}: a Constant needs exactly one value attribute",
              n.describe());
  const auto& [key, value] = *n.attrs.begin();
  if (key == "value") return n.attr_tensor("value");
  if (key == "value_float") return Tensor::scalar<float>(n.attr_float(key, 0));
  if (key == "value_int") return Tensor::scalar<int64_t>(n.attr_int(key, 0));
  if (key == "value_floats") {
    auto v = n.attr_floats(key);
    return Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v);
  }
  if (key == "value_ints") {
    auto v = n.attr_ints(key);
    return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
  }
  fail(ErrorKind::kUnsupported, "{}: Constant attribute '{}' is not supported", n.describe(), key);
}

Graph graph_from_proto(const onnx::ModelProto& model, const std::string& base_dir) {
  GRAFT_CHECK(model.ir_version() >= kMinIrVersion && model.ir_version() <= kMaxIrVersion,
              kUnsupported, "IR version {} is not supported (graft reads {} to {})",
              model.ir_version(), kMinIrVersion, kMaxIrVersion);
  Graph g;
  for (const auto& op : model.opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") g.opset = static_cast<int>(op.version());
  }
  GRAFT_CHECK(model.opset_import_size() > 0, kCorruption, "the model imports no opset");
  // A model importing only other domains (e.g. ai.onnx.preview.training) is
  // rejected below, at its first node, as an unsupported domain.
  GRAFT_CHECK(g.opset <= kMaxOpset, kUnsupported,
              "opset {} is newer than graft supports (up to {})", g.opset, kMaxOpset);
  GRAFT_CHECK(model.has_graph(), kCorruption, "the model has no graph");
  const onnx::GraphProto& gp = model.graph();
  g.name = gp.name();
  for (const auto& kv : model.metadata_props()) g.metadata[kv.key()] = kv.value();

  for (const auto& init : gp.initializer()) {
    GRAFT_CHECK(!init.name().empty(), kCorruption, "an initializer has no name");
    g.initializers[init.name()] = tensor_from_proto(init, base_dir);
  }
  GRAFT_CHECK(gp.sparse_initializer_size() == 0, kUnsupported, "sparse initializers are not supported");
  for (const auto& in : gp.input()) {
    if (g.initializers.count(in.name())) continue;  // IR 3 style: weights listed as inputs
    g.inputs.push_back(decl_from_proto(in));
  }
  for (const auto& out : gp.output()) g.outputs.push_back(decl_from_proto(out));

  std::map<std::string, int> name_count;
  for (int i = 0; i < gp.node_size(); ++i) {
    const onnx::NodeProto& np = gp.node(i);
    Node n;
    n.op_type = np.op_type();
    n.name = np.name().empty() ? fmt::format("{}_{}", np.op_type(), i) : np.name();
    if (name_count[n.name]++) n.name += fmt::format("_{}", i);  // keep node names unique
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    with_context(n.describe(), [&] {
      GRAFT_CHECK(np.domain().empty() || np.domain() == "ai.onnx", kUnsupported,
                  "op domain '{}' is not supported", np.domain());
      for (const auto& a : np.attribute()) {
        if (!a.ref_attr_name().empty())
          fail(ErrorKind::kUnsupported, "attribute references are not supported");
        n.attrs[a.name()] = attribute_from_proto(a, base_dir);
      }
    });
    if (n.op_type == "Constant") {
      GRAFT_CHECK(n.outputs.size() == 1, kCorruption, "{}: a Constant has one output", n.describe());
      g.initializers[n.outputs[0]] = with_context(n.describe(), [&] { return constant_value(n); });
      continue;
    }
    g.nodes.push_back(std::move(n));
  }
  g.sort_topologically();
  validate_ops(g);
  return g;
}

}  // namespace

Graph parse_onnx(const std::string& bytes, const std::string& base_dir, const std::string& label) {
  return with_context(label, [&] {
    onnx::ModelProto model;
    GRAFT_CHECK(model.ParseFromString(bytes), kCorruption,
                "not a valid ONNX model (the protobuf cannot be parsed; truncated or not ONNX?)");
    return graph_from_proto(model, base_dir);
  });
}

Graph load_onnx(const std::string& path) {
  std::string bytes = read_file(path);
  return parse_onnx(bytes, fs::path(path).parent_path().string(), path);
}

Tensor load_onnx_tensor(const std::string& path, std::string* name_out) {
  std::string bytes = read_file(path);
  return with_context(path, [&] {
    onnx::TensorProto proto;
    GRAFT_CHECK(proto.ParseFromString(bytes), kCorruption, "not a serialized ONNX TensorProto");
    if (name_out) *name_out = proto.name();
    return tensor_from_proto(proto, fs::path(path).parent_path().string());
  });
}

}  // namespace graft
