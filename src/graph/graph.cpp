#include "graft/graph.h"

#include <algorithm>
#include <set>

namespace graft {

namespace {
template <typename T>
const T* typed_attr(const Node& n, const std::string& key, const char* type_name) {
  auto it = n.attrs.find(key);
  if (it == n.attrs.end()) return nullptr;
  const T* v = std::get_if<T>(&it->second);
  GRAFT_CHECK(v != nullptr, kCorruption, "{}: attribute '{}' should be {}", n.describe(), key,
              type_name);
  return v;
}
}  // namespace

int64_t Node::attr_int(const std::string& key, int64_t fallback) const {
  const auto* v = typed_attr<int64_t>(*this, key, "an int");
  return v ? *v : fallback;
}
float Node::attr_float(const std::string& key, float fallback) const {
  const auto* v = typed_attr<float>(*this, key, "a float");
  return v ? *v : fallback;
}
std::string Node::attr_string(const std::string& key, const std::string& fallback) const {
  const auto* v = typed_attr<std::string>(*this, key, "a string");
  return v ? *v : fallback;
}
std::vector<int64_t> Node::attr_ints(const std::string& key, std::vector<int64_t> fallback) const {
  const auto* v = typed_attr<std::vector<int64_t>>(*this, key, "a list of ints");
  return v ? *v : fallback;
}
std::vector<float> Node::attr_floats(const std::string& key, std::vector<float> fallback) const {
  const auto* v = typed_attr<std::vector<float>>(*this, key, "a list of floats");
  return v ? *v : fallback;
}
const Tensor& Node::attr_tensor(const std::string& key) const {
  const auto* v = typed_attr<Tensor>(*this, key, "a tensor");
  GRAFT_CHECK(v != nullptr, kCorruption, "{}: attribute '{}' is required", describe(), key);
  return *v;
}
std::string Node::describe() const { return fmt::format("node '{}' ({})", name, op_type); }

const Node* Graph::find_node(const std::string& node_name) const {
  for (const Node& n : nodes)
    if (n.name == node_name) return &n;
  return nullptr;
}

const Node* Graph::producer(const std::string& value) const {
  for (const Node& n : nodes)
    for (const std::string& o : n.outputs)
      if (o == value) return &n;
  return nullptr;
}

const ValueDecl* Graph::find_input(const std::string& input_name) const {
  for (const ValueDecl& v : inputs)
    if (v.name == input_name) return &v;
  return nullptr;
}

void Graph::sort_topologically() {
  std::map<std::string, size_t> producer_of;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const std::string& o : nodes[i].outputs) {
      if (o.empty()) continue;
      GRAFT_CHECK(!producer_of.count(o) && !initializers.count(o) && !find_input(o), kCorruption,
                  "{}: value '{}' is defined more than once", nodes[i].describe(), o);
      producer_of[o] = i;
    }
  }
  // Kahn's algorithm, keeping the file's order among ready nodes.
  std::vector<int> pending(nodes.size(), 0);
  std::vector<std::vector<size_t>> consumers(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::set<size_t> deps;
    for (const std::string& in : nodes[i].inputs) {
      if (in.empty() || initializers.count(in) || find_input(in)) continue;
      auto it = producer_of.find(in);
      GRAFT_CHECK(it != producer_of.end(), kCorruption,
                  "{}: input '{}' is not a graph input, an initializer or any node's output",
                  nodes[i].describe(), in);
      deps.insert(it->second);
    }
    pending[i] = static_cast<int>(deps.size());
    for (size_t d : deps) consumers[d].push_back(i);
  }
  std::vector<size_t> order;
  std::set<size_t> ready;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (pending[i] == 0) ready.insert(i);
  while (!ready.empty()) {
    size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (size_t c : consumers[i])
      if (--pending[c] == 0) ready.insert(c);
  }
  if (order.size() != nodes.size()) {
    for (size_t i = 0; i < nodes.size(); ++i)
      if (pending[i] > 0)
        fail(ErrorKind::kCorruption, "{}: the graph has a cycle through this node",
             nodes[i].describe());
  }
  std::vector<Node> sorted;
  sorted.reserve(nodes.size());
  for (size_t i : order) sorted.push_back(std::move(nodes[i]));
  nodes = std::move(sorted);
  for (const ValueDecl& out : outputs)
    GRAFT_CHECK(producer_of.count(out.name) || initializers.count(out.name) || find_input(out.name),
                kCorruption, "graph output '{}' is not produced by any node", out.name);
}

std::vector<std::string> Graph::value_names() const {
  std::vector<std::string> names;
  for (const ValueDecl& v : inputs) names.push_back(v.name);
  for (const Node& n : nodes)
    for (const std::string& o : n.outputs)
      if (!o.empty()) names.push_back(o);
  return names;
}

static size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

std::vector<std::string> nearest_names(const std::string& name,
                                       const std::vector<std::string>& candidates, size_t limit) {
  std::vector<std::pair<size_t, std::string>> scored;
  for (const std::string& c : candidates) scored.emplace_back(edit_distance(name, c), c);
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && out.size() < limit; ++i) out.push_back(scored[i].second);
  return out;
}

}  // namespace graft
