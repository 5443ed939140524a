// File layout: "GRAFTCKPT1\n", an 8-byte little-endian header length, a
// JSON header (fingerprint, step, epoch, info, and for each tensor its
// name, dtype, shape and byte offset), then the tensors' bytes.
#include "graft/checkpoint.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "graft/file.h"

namespace graft {

namespace {

constexpr char kMagic[] = "GRAFTCKPT1\n";
constexpr size_t kMagicSize = sizeof(kMagic) - 1;

DType dtype_named(const std::string& name) {
  for (DType t : {DType::kF32, DType::kF64, DType::kF16, DType::kI64, DType::kI32, DType::kI8,
                  DType::kU8, DType::kBool})
    if (name == dtype_name(t)) return t;
  fail(ErrorKind::kCorruption, "unknown dtype '{}'", name);
}

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

std::string graph_fingerprint(const Graph& graph) {
  std::string s;
  for (const Node& n : graph.nodes) {
    s += n.op_type + '(' + n.name + ')';
    for (const std::string& i : n.inputs) s += i + ',';
    for (const std::string& o : n.outputs) s += o + ';';
  }
  for (const std::string& p : graph.trainable)
    s += p + '[' + shape_str(graph.initializers.at(p).shape()) + ']';
  return fmt::format("{:016x}", fnv1a(s));
}

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  nlohmann::json header;
  header["graph"] = c.graph_fingerprint;
  header["step"] = c.step;
  header["epoch"] = c.epoch;
  header["info"] = c.info;
  header["tensors"] = nlohmann::json::array();
  uint64_t offset = 0;
  for (const auto& [name, t] : c.tensors) {
    header["tensors"].push_back({{"name", name},
                                 {"dtype", dtype_name(t.dtype())},
                                 {"shape", t.shape()},
                                 {"offset", offset}});
    offset += t.nbytes();
  }
  std::string h = header.dump();
  std::string bytes(kMagic, kMagicSize);
  uint64_t len = h.size();
  for (int i = 0; i < 8; ++i) bytes += static_cast<char>((len >> (8 * i)) & 0xff);
  bytes += h;
  bytes.reserve(bytes.size() + offset);
  for (const auto& [name, t] : c.tensors) bytes.append(static_cast<const char*>(t.raw()), t.nbytes());
  write_file_atomically(path, bytes);
}

Checkpoint load_checkpoint(const std::string& path) {
  std::string bytes = read_file(path);
  return with_context(path, [&] {
    GRAFT_CHECK(bytes.size() >= kMagicSize + 8 && bytes.compare(0, kMagicSize, kMagic) == 0,
                kCorruption, "not a graft checkpoint");
    uint64_t len = 0;
    for (int i = 0; i < 8; ++i)
      len |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[kMagicSize + i])) << (8 * i);
    const size_t data_start = kMagicSize + 8 + len;
    GRAFT_CHECK(len <= bytes.size() && data_start <= bytes.size(), kCorruption,
                "truncated checkpoint header");
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(bytes.substr(kMagicSize + 8, len));
      Checkpoint c;
      c.graph_fingerprint = header.at("graph").get<std::string>();
      c.step = header.at("step").get<int64_t>();
      c.epoch = header.at("epoch").get<int64_t>();
      c.info = header.at("info").get<std::map<std::string, std::string>>();
      const uint64_t data_size = bytes.size() - data_start;
      for (const auto& entry : header.at("tensors")) {
        std::string name = entry.at("name").get<std::string>();
        DType dtype = dtype_named(entry.at("dtype").get<std::string>());
        Shape shape = entry.at("shape").get<Shape>();
        uint64_t offset = entry.at("offset").get<uint64_t>();
        uint64_t nbytes = static_cast<uint64_t>(shape_numel(shape)) * dtype_size(dtype);
        GRAFT_CHECK(offset <= data_size && nbytes <= data_size - offset, kCorruption,
                    "tensor '{}' lies past the end of the file (truncated?)", name);
        Tensor t(dtype, shape);
        std::memcpy(t.raw(), bytes.data() + data_start + offset, nbytes);
        c.tensors[name] = t;
      }
      return c;
    } catch (const nlohmann::json::exception& e) {
      fail(ErrorKind::kCorruption, "malformed checkpoint header: {}", e.what());
    }
  });
}

}  // namespace graft
