// The weights manifest of a TF.js model: groups of files whose bytes,
// concatenated, hold the group's weights in order; each weight float32,
// int32, float16 or bool, or quantized (uint8/uint16: value = min + scale * q;
// float16). Sizes are checked against the files before anything is allocated.
#include <fmt/ranges.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/tfjs_internal.h"

namespace graft::tfjs {

namespace fs = std::filesystem;

namespace {

struct WeightSpec {
  std::string name;
  Shape shape;
  std::string dtype;    // float32, int32, float16, bool
  std::string storage;  // what the bytes hold: dtype, or the quantized dtype
  double min = 0, scale = 1;
  bool optimizer = false;  // an optimizer's state: skipped, but it takes bytes
  uint64_t bytes = 0;
};

uint64_t storage_size(const std::string& storage) {
  if (storage == "float32" || storage == "int32") return 4;
  if (storage == "float16" || storage == "uint16") return 2;
  if (storage == "uint8" || storage == "bool") return 1;
  return 0;
}

WeightSpec parse_spec(const json& w) {
  WeightSpec s;
  s.name = string_field(w, "name");
  return with_context(fmt::format("weight '{}'", s.name), [&] {
    s.shape = as_int_list(member(w, "shape"), "shape");
    for (int64_t d : s.shape) GRAFT_CHECK(d >= 0, kCorruption, "shape has a negative dimension");
    s.dtype = string_field(w, "dtype");
    GRAFT_CHECK(
        s.dtype == "float32" || s.dtype == "int32" || s.dtype == "float16" || s.dtype == "bool",
        kUnsupported, "dtype '{}' is not supported (float32, float16, int32, bool)", s.dtype);
    s.storage = s.dtype;
    s.optimizer = string_field(w, "group", std::string("model")) == "optimizer";
    if (const json* q = find_member(w, "quantization")) {
      s.storage = string_field(*q, "dtype");
      if (s.storage == "uint8" || s.storage == "uint16") {
        GRAFT_CHECK(s.dtype == "float32" || s.dtype == "int32", kUnsupported,
                    "{} quantization of {} values is not supported", s.storage, s.dtype);
        s.min = number_field(*q, "min");
        s.scale = number_field(*q, "scale");
      } else {
        GRAFT_CHECK(s.storage == "float16", kUnsupported,
                    "quantization dtype '{}' is not supported (uint8, uint16, float16)", s.storage);
        GRAFT_CHECK(s.dtype == "float32", kUnsupported,
                    "float16 quantization of {} values is not supported", s.dtype);
      }
    }
    // The size is checked against the files before anything is allocated.
    uint64_t bytes = storage_size(s.storage);
    for (int64_t d : s.shape) {
      GRAFT_CHECK(d == 0 || bytes <= (uint64_t{1} << 60) / static_cast<uint64_t>(d), kCorruption,
                  "shape [{}] is too large", fmt::join(s.shape, ", "));
      bytes *= static_cast<uint64_t>(d);
    }
    s.bytes = bytes;
    return s;
  });
}

Tensor decode(const WeightSpec& s, const uint8_t* p) {
  int64_t n = shape_numel(s.shape);
  if (s.storage == "uint8" || s.storage == "uint16") {
    // value = min + scale * q, computed as TF.js does (in double, then stored).
    auto q = [&](int64_t i) -> double {
      if (s.storage == "uint8") return p[i];
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      return v;
    };
    if (s.dtype == "int32") {
      Tensor t(DType::kI32, s.shape);
      for (int64_t i = 0; i < n; ++i)
        t.data<int32_t>()[i] = static_cast<int32_t>(std::floor(q(i) * s.scale + s.min + 0.5));
      return t;
    }
    Tensor t(DType::kF32, s.shape);
    for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = static_cast<float>(q(i) * s.scale + s.min);
    return t;
  }
  if (s.storage == "float16") {
    Tensor t(DType::kF32, s.shape);
    for (int64_t i = 0; i < n; ++i) {
      Half h;
      std::memcpy(&h.bits, p + 2 * i, 2);
      t.data<float>()[i] = half_to_float(h);
    }
    return t;
  }
  DType dt = s.dtype == "float32" ? DType::kF32 : s.dtype == "int32" ? DType::kI32 : DType::kBool;
  Tensor t(dt, s.shape);
  if (dt == DType::kBool) {
    for (int64_t i = 0; i < n; ++i) t.data<bool>()[i] = p[i] != 0;
  } else {
    std::memcpy(t.raw(), p, t.nbytes());
  }
  return t;
}

fs::path weight_file(const fs::path& dir, const std::string& rel) {
  fs::path p(rel);
  GRAFT_CHECK(!rel.empty() && p.is_relative() && rel.find("..") == std::string::npos, kCorruption,
              "weight path '{}' must be a relative path inside the model's folder", rel);
  return dir / p;
}

// Reads one manifest group: its files concatenated hold its weights in order.
void read_group(const json& group, const fs::path& dir, WeightStore& store) {
  std::vector<fs::path> files;
  for (const json& p : member(group, "paths")) {
    GRAFT_CHECK(p.is_string(), kCorruption, "'paths' must hold strings");
    files.push_back(weight_file(dir, p.get<std::string>()));
  }
  GRAFT_CHECK(!files.empty(), kCorruption, "a weights group has no paths");
  std::vector<WeightSpec> specs;
  uint64_t needed = 0;
  for (const json& w : member(group, "weights")) {
    specs.push_back(parse_spec(w));
    needed += specs.back().bytes;
    GRAFT_CHECK(needed <= (uint64_t{1} << 60), kCorruption, "the weights are too large");
  }
  uint64_t held = 0;
  for (const fs::path& f : files) {
    std::error_code ec;
    uint64_t size = fs::file_size(f, ec);
    GRAFT_CHECK(!ec, kNotFound, "weight file '{}' cannot be read: {}", f.string(), ec.message());
    held += size;
  }
  if (held < needed) {
    uint64_t end = 0;
    std::string first_missing;
    for (const WeightSpec& s : specs) {
      end += s.bytes;
      if (end > held) {
        first_missing = s.name;
        break;
      }
    }
    fail(ErrorKind::kCorruption,
         "weight file '{}' is truncated: the group's files hold {} bytes, its weights need {} "
         "(weight '{}' is past the end)",
         files.back().string(), held, needed, first_missing);
  }
  GRAFT_CHECK(held == needed, kCorruption,
              "weight file '{}': the group's files hold {} bytes, but its weights take {}",
              files.back().string(), held, needed);
  std::vector<uint8_t> data(held);
  uint64_t at = 0;
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    uint64_t size = fs::file_size(f);
    in.read(reinterpret_cast<char*>(data.data() + at), static_cast<std::streamsize>(size));
    GRAFT_CHECK(in.gcount() == static_cast<std::streamsize>(size), kIO,
                "weight file '{}': read failed", f.string());
    at += size;
  }
  uint64_t offset = 0;
  for (const WeightSpec& s : specs) {
    if (!s.optimizer) store.add(s.name, decode(s, data.data() + offset));
    offset += s.bytes;
  }
}

}  // namespace

void read_weights_manifest(const json& manifest, const std::string& dir, WeightStore& store) {
  GRAFT_CHECK(manifest.is_array(), kCorruption, "'weightsManifest' must be a list");
  for (const json& group : manifest) read_group(group, fs::path(dir), store);
}

void WeightStore::add(const std::string& name, Tensor t) {
  GRAFT_CHECK(by_name_.count(name) == 0, kCorruption, "weight '{}' appears twice in the manifest",
              name);
  by_name_[name] = std::move(t);
}

Tensor WeightStore::take(const std::string& layer, const std::string& suffix, const Shape& shape,
                         std::string* name_out) {
  std::string wanted = layer + "/" + suffix;
  auto it = by_name_.find(wanted);
  if (it == by_name_.end()) {
    // Keras prefixes the weights of nested models with the model's name in
    // some versions: accept exactly one "<scope>/layer/suffix".
    std::string tail = "/" + wanted;
    for (auto jt = by_name_.begin(); jt != by_name_.end(); ++jt) {
      const std::string& n = jt->first;
      if (n.size() <= tail.size() || n.compare(n.size() - tail.size(), tail.size(), tail) != 0)
        continue;
      GRAFT_CHECK(it == by_name_.end(), kCorruption, "weights '{}' and '{}' both match '{}'",
                  it->first, n, wanted);
      it = jt;
    }
  }
  GRAFT_CHECK(it != by_name_.end(), kCorruption, "weight '{}' is missing from the weights manifest",
              wanted);
  const Tensor& t = it->second;
  GRAFT_CHECK(t.dtype() == DType::kF32, kCorruption, "weight '{}' is {}, the layer needs float32",
              it->first, dtype_name(t.dtype()));
  GRAFT_CHECK(t.shape() == shape, kCorruption,
              "weight '{}' has shape [{}] in the manifest, the layer needs [{}]", it->first,
              fmt::join(t.shape(), ", "), fmt::join(shape, ", "));
  used_.insert(it->first);
  *name_out = it->first;
  return t;
}

std::vector<std::string> WeightStore::unused() const {
  std::vector<std::string> out;
  for (const auto& kv : by_name_)
    if (!used_.count(kv.first)) out.push_back(kv.first);
  return out;
}

}  // namespace graft::tfjs
