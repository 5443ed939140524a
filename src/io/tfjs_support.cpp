// JSON field access and the graph builder of the TF.js importer.
#include <fmt/ranges.h>

#include <cmath>

#include "io/tfjs_internal.h"

namespace graft::tfjs {

// --- JSON access ----------------------------------------------------------------

const json& member(const json& obj, const std::string& key) {
  GRAFT_CHECK(obj.is_object(), kCorruption, "expected an object holding '{}'", key);
  auto it = obj.find(key);
  GRAFT_CHECK(it != obj.end() && !it->is_null(), kCorruption, "missing field '{}'", key);
  return *it;
}

const json* find_member(const json& obj, const std::string& key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

int64_t as_int(const json& v, const std::string& what) {
  if (v.is_number_integer()) return v.get<int64_t>();
  // JSON writers may print integral values as 2.0.
  if (v.is_number_float()) {
    double d = v.get<double>();
    // Range first: casting a double outside int64's range is undefined.
    if (std::abs(d) < 9e15 && d == static_cast<double>(static_cast<int64_t>(d)))
      return static_cast<int64_t>(d);
  }
  fail(ErrorKind::kCorruption, "'{}' must be an integer, got {}", what, v.dump());
}

std::vector<int64_t> as_int_list(const json& v, const std::string& what) {
  GRAFT_CHECK(v.is_array(), kCorruption, "'{}' must be a list of integers, got {}", what, v.dump());
  std::vector<int64_t> out;
  for (const json& x : v) out.push_back(as_int(x, what));
  return out;
}

int64_t int_field(const json& obj, const std::string& key, std::optional<int64_t> fallback) {
  const json* v = find_member(obj, key);
  if (!v && fallback) return *fallback;
  return as_int(v ? *v : member(obj, key), key);
}

double number_field(const json& obj, const std::string& key, std::optional<double> fallback) {
  const json* v = find_member(obj, key);
  if (!v && fallback) return *fallback;
  const json& x = v ? *v : member(obj, key);
  GRAFT_CHECK(x.is_number(), kCorruption, "'{}' must be a number, got {}", key, x.dump());
  return x.get<double>();
}

bool bool_field(const json& obj, const std::string& key, std::optional<bool> fallback) {
  const json* v = find_member(obj, key);
  if (!v && fallback) return *fallback;
  const json& x = v ? *v : member(obj, key);
  GRAFT_CHECK(x.is_boolean(), kCorruption, "'{}' must be true or false, got {}", key, x.dump());
  return x.get<bool>();
}

std::string string_field(const json& obj, const std::string& key,
                         std::optional<std::string> fallback) {
  const json* v = find_member(obj, key);
  if (!v && fallback) return *fallback;
  const json& x = v ? *v : member(obj, key);
  GRAFT_CHECK(x.is_string(), kCorruption, "'{}' must be a string, got {}", key, x.dump());
  return x.get<std::string>();
}

std::vector<int64_t> pair_field(const json& obj, const std::string& key,
                                std::optional<int64_t> fallback) {
  const json* v = find_member(obj, key);
  if (!v && fallback) return {*fallback, *fallback};
  const json& x = v ? *v : member(obj, key);
  if (!x.is_array()) {
    int64_t n = as_int(x, key);
    return {n, n};
  }
  std::vector<int64_t> out = as_int_list(x, key);
  GRAFT_CHECK(out.size() == 2, kCorruption, "'{}' must hold 2 values, got {}", key, x.dump());
  return out;
}

// --- graph builder ----------------------------------------------------------------

std::string GraphBuilder::claim(const std::string& wanted) {
  std::string name = wanted;
  for (int i = 1; names_.count(name); ++i) name = fmt::format("{}_{}", wanted, i);
  names_.insert(name);
  return name;
}

std::string GraphBuilder::add_node(const std::string& op, std::vector<std::string> inputs,
                                   const std::string& output,
                                   std::map<std::string, Attribute> attrs) {
  GRAFT_ASSERT(claimed(output));
  Node n;
  n.name = output;
  n.op_type = op;
  n.inputs = std::move(inputs);
  n.outputs = {output};
  n.attrs = std::move(attrs);
  graph.nodes.push_back(std::move(n));
  return output;
}

std::string GraphBuilder::add_initializer(const std::string& name, const Tensor& value) {
  if (graph.initializers.count(name)) return name;
  GRAFT_CHECK(!claimed(name), kCorruption, "weight or constant '{}' has the name of a value", name);
  names_.insert(name);
  graph.initializers[name] = value;
  return name;
}

}  // namespace graft::tfjs
