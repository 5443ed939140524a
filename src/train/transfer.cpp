#include "graft/transfer.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "graft/checkpoint.h"
#include "graft/feature_cache.h"
#include "graft/onnx.h"
#include "graft/session.h"
#include "graft/tfjs.h"

namespace graft {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The one activation entering block `index` of `blocks` (blocks are cut
// where a single activation carries everything forward).
std::string block_input(const Graph& g, const std::vector<std::vector<std::string>>& blocks, size_t index) {
  std::set<std::string> before;
  for (size_t b = 0; b < index; ++b)
    for (const std::string& name : blocks[b])
      for (const std::string& o : g.find_node(name)->outputs) before.insert(o);
  for (const ValueDecl& in : g.inputs) before.insert(in.name);
  std::set<std::string> entering;
  for (size_t b = index; b < blocks.size(); ++b)
    for (const std::string& name : blocks[b])
      for (const std::string& in : g.find_node(name)->inputs)
        if (before.count(in)) entering.insert(in);
  GRAFT_CHECK(entering.size() == 1, kInternal, "block {} has {} inputs", index, entering.size());
  return *entering.begin();
}

// Rows of `features` for the samples not in `bad`, each repeated per view,
// reshaped to [rows, sample_shape...]; labels likewise. Returns the samples kept.
std::vector<size_t> keep_good_rows(Tensor& features, std::vector<int64_t>& labels, const Dataset& d, int views,
                                   const std::vector<size_t>& bad, const Shape& sample_shape) {
  std::set<size_t> skip(bad.begin(), bad.end());
  std::vector<int64_t> rows;
  std::vector<size_t> kept_samples;
  labels.clear();
  for (size_t i = 0; i < d.samples.size(); ++i) {
    if (skip.count(i)) continue;
    kept_samples.push_back(i);
    for (int v = 0; v < views; ++v) {
      rows.push_back(static_cast<int64_t>(i) * views + v);
      labels.push_back(d.samples[i].labels.at(0));
    }
  }
  Tensor kept = skip.empty() ? features : gather_rows(features, rows);
  Shape shape = sample_shape;
  shape.insert(shape.begin(), static_cast<int64_t>(rows.size()));
  features = kept.reshaped(shape);
  return kept_samples;
}

// Inserts frozen z-scoring of `feature` (statistics of `train` rows) and
// returns the standardized value's name.
std::string add_standardize(Graph& g, const std::string& feature, const Tensor& train) {
  const int64_t n = train.dim(0);
  const int64_t d = train.numel() / std::max<int64_t>(n, 1);
  std::vector<double> mean(d, 0), var(d, 0);
  const float* x = train.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < d; ++k) mean[k] += x[i * d + k];
  for (double& m : mean) m /= std::max<int64_t>(n, 1);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < d; ++k) var[k] += (x[i * d + k] - mean[k]) * (x[i * d + k] - mean[k]);
  Shape shape = train.shape();
  shape[0] = 1;
  Tensor m(DType::kF32, shape), s(DType::kF32, shape);
  for (int64_t k = 0; k < d; ++k) {
    m.data<float>()[k] = static_cast<float>(mean[k]);
    // A constant feature (e.g. a dead ReLU channel) keeps scale 1.
    double sd = std::sqrt(var[k] / std::max<int64_t>(n, 1));
    s.data<float>()[k] = static_cast<float>(sd > 1e-6 ? 1 / sd : 1.0);
  }
  g.initializers["head/feature_mean"] = m;
  g.initializers["head/feature_inv_std"] = s;
  Node sub, mul;
  sub.name = "head/center";
  sub.op_type = "Sub";
  sub.inputs = {feature, "head/feature_mean"};
  sub.outputs = {"head/center"};
  mul.name = "head/standardize";
  mul.op_type = "Mul";
  mul.inputs = {"head/center", "head/feature_inv_std"};
  mul.outputs = {"head/standardize"};
  g.nodes.push_back(sub);
  g.nodes.push_back(mul);
  return "head/standardize";
}

// A seeded stratified quarter of the samples (by first label), for choosing
// a cut when there is no validation set.
std::vector<bool> selection_rows(const Dataset& d, uint64_t seed) {
  std::map<int64_t, std::vector<size_t>> by_class;
  for (size_t i = 0; i < d.samples.size(); ++i) by_class[d.samples[i].labels.at(0)].push_back(i);
  std::vector<bool> pick(d.samples.size(), false);
  std::mt19937_64 rng(seed ^ 0x5EA2C4ull);
  for (auto& [label, idx] : by_class) {
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
    size_t n = std::min(idx.size() - 1, static_cast<size_t>(std::lround(idx.size() * 0.25)));
    for (size_t i = 0; i < n; ++i) pick[idx[i]] = true;
  }
  return pick;
}

// Columns [from, from + width) of a [N, D] table.
Tensor columns(const Tensor& t, int64_t from, int64_t width) {
  const int64_t n = t.dim(0), d = t.dim(1);
  Tensor out(DType::kF32, {n, width});
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(out.data<float>() + i * width, t.data<float>() + i * d + from, width * sizeof(float));
  return out;
}

// Candidate cuts: the output of every block before `suggested`, and
// `suggested` itself, each global-average-pooled. One pass of the trunk
// computes them all, concatenated into one cached row per image; a head is
// then trained on each candidate's columns and scored on the selection set.
std::vector<std::pair<std::string, double>> search_cuts(
    const Graph& g, const std::string& input, const std::string& suggested, const std::string& model_key,
    const Dataset& train, const Dataset& val, const TransferOptions& o,
    const std::function<void(const TransferProgress&)>& progress) {
  Graph trunk = extract(g, {input}, {suggested});
  auto blocks = find_blocks(trunk);
  std::vector<std::string> candidates;
  for (size_t b = 1; b < blocks.size(); ++b) candidates.push_back(block_input(trunk, blocks, b));
  candidates.push_back(suggested);
  Graph search = extract(g, {input}, candidates);
  auto infos = infer_shapes(search, resolve_input_shapes(search, {}, 1));
  std::vector<int64_t> widths;
  Node concat;
  concat.name = concat.outputs.emplace_back("search/features");
  concat.op_type = "Concat";
  concat.attrs["axis"] = int64_t{1};
  for (const std::string& c : candidates) {
    const Shape& shape = infos.at(c).shape;
    std::string x = c;
    if (shape.size() == 4) {
      Node pool, flat;
      pool.name = "search/pool/" + c;
      pool.op_type = "GlobalAveragePool";
      pool.inputs = {c};
      pool.outputs = {pool.name};
      flat.name = "search/flatten/" + c;
      flat.op_type = "Flatten";
      flat.inputs = {pool.name};
      flat.outputs = {flat.name};
      search.nodes.push_back(pool);
      search.nodes.push_back(flat);
      x = flat.name;
    }
    GRAFT_CHECK(shape.size() == 4 || shape.size() == 2, kUnsupported,
                "cut search: block output '{}' has shape {}", c, shape_str(shape));
    widths.push_back(shape[1]);
    concat.inputs.push_back(x);
  }
  search.nodes.push_back(concat);
  search.outputs = {ValueDecl{"search/features", DType::kF32, std::nullopt}};
  Session session(search);

  auto table_of = [&](const Dataset& d, const char* what) {
    FeatureCacheOptions fo;
    fo.cache_dir = o.cache_dir;
    fo.trunk_key = model_key + ":search:" + std::to_string(candidates.size()) + ":" + suggested;
    fo.preprocess = o.preprocess;
    fo.seed = o.fit.seed;
    fo.workers = o.workers;
    fo.skip_bad = o.skip_bad;
    FeatureCache cache(fo);
    Tensor t = cache.features(d, session, input, "search/features", [&](int64_t done, int64_t total) {
      if (progress) progress({std::string("cut search: ") + what, done, total, {}, {}});
    });
    std::set<size_t> bad(cache.bad_samples().begin(), cache.bad_samples().end());
    return std::make_pair(t, bad);
  };
  auto [train_table, train_bad] = table_of(train, "train");
  std::vector<int64_t> fit_rows, sel_rows, fit_y, sel_y;
  Tensor sel_table;
  if (val.samples.empty()) {
    std::vector<bool> pick = selection_rows(train, o.fit.seed);
    for (size_t i = 0; i < train.samples.size(); ++i) {
      if (train_bad.count(i)) continue;
      (pick[i] ? sel_rows : fit_rows).push_back(static_cast<int64_t>(i));
      (pick[i] ? sel_y : fit_y).push_back(train.samples[i].labels.at(0));
    }
    sel_table = gather_rows(train_table, sel_rows);
  } else {
    for (size_t i = 0; i < train.samples.size(); ++i)
      if (!train_bad.count(i)) {
        fit_rows.push_back(static_cast<int64_t>(i));
        fit_y.push_back(train.samples[i].labels.at(0));
      }
    auto [val_table, val_bad] = table_of(val, "validation");
    for (size_t i = 0; i < val.samples.size(); ++i)
      if (!val_bad.count(i)) {
        sel_rows.push_back(static_cast<int64_t>(i));
        sel_y.push_back(val.samples[i].labels.at(0));
      }
    sel_table = gather_rows(val_table, sel_rows);
  }
  Tensor fit_table = gather_rows(train_table, fit_rows);

  std::vector<std::pair<std::string, double>> table;
  HeadOptions head = o.head;
  head.classes = std::max({train.num_classes, val.num_classes, head.classes});
  FitOptions fo = o.fit;
  fo.checkpoint.clear();
  fo.resume = false;
  int64_t offset = 0;
  for (size_t k = 0; k < candidates.size(); ++k) {
    Tensor x = columns(fit_table, offset, widths[k]);
    Tensor sx = columns(sel_table, offset, widths[k]);
    offset += widths[k];
    Graph h;
    h.opset = 13;
    h.inputs.push_back({"features", DType::kF32, std::vector<Dim>{{-1, "batch"}, {widths[k], ""}}});
    attach_head(h, o.standardize ? add_standardize(h, "features", x) : "features", head);
    Session s(h);
    FitResult fr = fit(s, x, fit_y, sx, sel_y, fo);
    table.emplace_back(candidates[k], fr.best.accuracy);
    if (progress) progress({"cut search: heads", static_cast<int64_t>(k + 1), static_cast<int64_t>(candidates.size()), {}, {}});
  }
  return table;
}

}  // namespace

Graph load_model(const std::string& path) {
  return ends_with(path, ".json") ? load_tfjs(path) : load_onnx(path);
}

std::string preprocess_to_json(const Preprocess& p) {
  return nlohmann::json({{"size", p.size},
                         {"crop_fraction", p.crop_fraction},
                         {"mean", p.mean},
                         {"scale", p.scale},
                         {"nhwc", p.nhwc},
                         {"keep_aspect", p.keep_aspect},
                         {"background", p.background}})
      .dump();
}

Preprocess preprocess_from_json(const std::string& json) {
  try {
    nlohmann::json j = nlohmann::json::parse(json);
    Preprocess p;
    p.size = j.at("size");
    p.crop_fraction = j.at("crop_fraction");
    p.mean = j.at("mean");
    p.scale = j.at("scale");
    p.nhwc = j.at("nhwc");
    p.keep_aspect = j.at("keep_aspect");
    p.background = j.at("background");
    return p;
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::kCorruption, "malformed preprocessing metadata: {}", e.what());
  }
}

Graph served_model(const Graph& logits_model, const std::vector<std::string>& class_names,
                   const Preprocess& preprocess, const std::string& cut) {
  Graph g = logits_model;
  append_softmax(g);
  g.metadata["graft.class_names"] = nlohmann::json(class_names).dump();
  g.metadata["graft.preprocess"] = preprocess_to_json(preprocess);
  g.metadata["graft.cut"] = cut;
  return g;
}

std::vector<std::string> class_names_of(const Graph& model) {
  auto it = model.metadata.find("graft.class_names");
  if (it == model.metadata.end()) return {};
  try {
    return nlohmann::json::parse(it->second).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::kCorruption, "malformed class names metadata: {}", e.what());
  }
}

Graph model_from_checkpoint(const std::string& path) {
  Checkpoint c = load_checkpoint(path);
  return with_context(path, [&] {
    auto bytes = c.tensors.find("extra/model.onnx");
    GRAFT_CHECK(bytes != c.tensors.end(), kInvalidArgument,
                "this checkpoint holds no model (it was not written by graft train)");
    const Tensor& b = bytes->second;
    Graph g = parse_onnx(std::string(static_cast<const char*>(b.raw()), b.nbytes()), ".", "the checkpoint's model");
    for (const auto& [key, t] : c.tensors) {
      if (key.rfind("best/", 0) != 0) continue;
      std::string name = key.substr(5);
      auto it = g.initializers.find(name);
      GRAFT_CHECK(it != g.initializers.end() && it->second.shape() == t.shape(), kCorruption,
                  "the checkpoint's weight '{}' does not fit its model", name);
      it->second = t;
    }
    return g;
  });
}

void randomize_weights(Graph& graph, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (const Node& n : graph.nodes) {
    if (n.op_type == "BatchNormalization" && n.inputs.size() == 5) {
      const float fill[] = {1, 0, 0, 1};  // scale, bias, mean, var: the identity
      for (int k = 1; k < 5; ++k) {
        Tensor t(DType::kF32, graph.initializers.at(n.inputs[k]).shape());
        for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = fill[k - 1];
        graph.initializers[n.inputs[k]] = t;
      }
      continue;
    }
    for (const std::string& p : parameters_of(graph, n)) {
      const Tensor& old = graph.initializers.at(p);
      if (old.rank() < 2) {  // a bias
        graph.initializers[p] = Tensor(DType::kF32, old.shape());
        continue;
      }
      // fan_in of a conv weight [out, in/groups, k...] or a Gemm weight.
      const double fan_in = static_cast<double>(old.numel() / old.dim(0));
      const double bound = std::sqrt(6.0 / fan_in);  // Kaiming uniform for ReLU
      Tensor t(DType::kF32, old.shape());
      for (int64_t i = 0; i < t.numel(); ++i)
        t.data<float>()[i] = static_cast<float>((2 * (static_cast<double>(rng() >> 11) * 0x1.0p-53) - 1) * bound);
      graph.initializers[p] = t;
    }
  }
}

Preprocess preprocess_for(const Graph& model) {
  if (auto it = model.metadata.find("graft.preprocess"); it != model.metadata.end())
    return preprocess_from_json(it->second);
  Preprocess p;
  GRAFT_CHECK(!model.inputs.empty(), kInvalidArgument, "the model has no inputs");
  const ValueDecl& in = model.inputs[0];
  auto meta = [&](const std::string& key) {
    auto it = model.metadata.find(key);
    return it == model.metadata.end() ? std::string() : it->second;
  };
  p.nhwc = meta("graft.input_layout") == "NHWC";
  if (in.shape && in.shape->size() == 4) {
    const Dim& h = (*in.shape)[p.nhwc ? 1 : 2];
    const Dim& w = (*in.shape)[p.nhwc ? 2 : 3];
    if (h.value > 0 && h.value == w.value) p.size = h.value;
  }
  const std::string range = meta("graft.input_range");
  if (range == "0..1") {
    p.mean = {0, 0, 0};
    p.scale = {1 / 255.0f, 1 / 255.0f, 1 / 255.0f};
  } else if (range == "0..255") {
    p.mean = {0, 0, 0};
    p.scale = {1, 1, 1};
  }
  return p;
}

TransferResult transfer(const Graph& pretrained, const std::string& model_key, const Dataset& train,
                        const Dataset& val, const Dataset& test, const TransferOptions& o,
                        const std::function<void(const TransferProgress&)>& progress) {
  TransferResult r;
  GRAFT_CHECK(!train.samples.empty(), kInvalidArgument, "the training set is empty");
  GRAFT_CHECK(!train.multi_label(), kUnsupported,
              "multi-label training (comma-separated labels) is not supported by graft train yet");
  GRAFT_CHECK(pretrained.inputs.size() == 1, kUnsupported,
              "the model has {} inputs; transfer learning needs one image input", pretrained.inputs.size());
  HeadOptions head = o.head;
  if (head.classes < 1)
    head.classes = std::max({train.num_classes, val.num_classes, test.num_classes});
  for (const Dataset* d : {&train, &val, &test})
    GRAFT_CHECK(d->num_classes <= head.classes, kInvalidArgument,
                "the data has {} classes but the head has {}", d->num_classes, head.classes);
  r.class_names = train.class_names;
  while (static_cast<int64_t>(r.class_names.size()) < head.classes)
    r.class_names.push_back(std::to_string(r.class_names.size()));

  Graph g = pretrained;
  g.trainable.clear();
  const std::string input = g.inputs[0].name;
  if (o.cut.empty() || o.cut == "search") {
    std::vector<std::string> cuts = suggest_cut_points(g);
    GRAFT_CHECK(!cuts.empty(), kInvalidArgument,
                "no cut point found (no global pooling before a final classifier): give one with --cut");
    r.cut = cuts[0];
  } else {
    r.cut = resolve_value(g, o.cut);
  }
  if (o.cut == "search") {
    const auto search_start = Clock::now();
    r.cut_table = search_cuts(g, input, r.cut, model_key, train, val, o, progress);
    double best = -1;
    for (const auto& [cut, accuracy] : r.cut_table)
      if (accuracy > best) {
        best = accuracy;
        r.cut = cut;
      }
    r.search_seconds = seconds_since(search_start);
  }
  Graph model = extract(g, {input}, {r.cut});
  r.cache_point = r.cut;
  if (o.unfreeze > 0) {
    unfreeze_last_blocks(model, o.unfreeze);
    auto blocks = find_blocks(model);
    r.cache_point = block_input(model, blocks, blocks.size() - o.unfreeze);
  } else if (const Shape s = infer_shapes(model, resolve_input_shapes(model, {}, 1)).at(r.cut).shape;
             s.size() == 4 && s[2] * s[3] > 1) {
    // A cut inside the trunk: pool it once here, so the cache holds C
    // numbers per image instead of C×H×W.
    Node pool;
    pool.name = pool.outputs.emplace_back("graft/cut_pool");
    pool.op_type = "GlobalAveragePool";
    pool.inputs = {r.cut};
    model.nodes.push_back(pool);
    model.outputs = {ValueDecl{pool.name, DType::kF32, std::nullopt}};
    r.cache_point = pool.name;
  }
  std::string feature = r.cache_point;

  // Features of the frozen part, once per image (and view).
  const auto feature_start = Clock::now();
  Session frozen(extract(model, {input}, {r.cache_point}));
  // One sample's feature shape (the cache point's shape without the batch).
  Shape sample_shape =
      infer_shapes(frozen.graph(), resolve_input_shapes(frozen.graph(), {}, 1)).at(r.cache_point).shape;
  sample_shape.erase(sample_shape.begin());
  auto features_of = [&](const Dataset& d, bool augmented, const char* what, std::vector<int64_t>& labels,
                         std::vector<size_t>* kept = nullptr) {
    FeatureCacheOptions fo;
    fo.cache_dir = o.cache_dir;
    // The cut and the cache point together name the frozen part (an inner
    // cut is cached at graft/cut_pool whatever the cut).
    fo.trunk_key = model_key + ":" + r.cut + ":" + r.cache_point;
    fo.preprocess = o.preprocess;
    fo.augment = augmented ? o.augment : Augment{};
    fo.views = augmented && o.augment.enabled ? std::max(o.views, 1) : 1;
    fo.seed = o.fit.seed;
    fo.workers = o.workers;
    fo.skip_bad = o.skip_bad;
    FeatureCache cache(fo);
    Tensor f = cache.features(d, frozen, input, r.cache_point, [&](int64_t done, int64_t total) {
      if (progress) progress({std::string("features: ") + what, done, total, {}, {}});
    });
    r.features_computed += cache.computed();
    r.features_reused += cache.reused();
    r.skipped.insert(r.skipped.end(), cache.skipped().begin(), cache.skipped().end());
    std::vector<size_t> good = keep_good_rows(f, labels, d, cache.views(), cache.bad_samples(), sample_shape);
    if (kept) *kept = good;
    return f;
  };
  std::vector<int64_t> train_y, val_y, test_y;
  Tensor train_x = features_of(train, true, "train", train_y);
  Tensor val_x = val.samples.empty() ? Tensor() : features_of(val, false, "validation", val_y);
  Tensor test_x = test.samples.empty() ? Tensor() : features_of(test, false, "test", test_y, &r.test_samples);
  r.feature_seconds = seconds_since(feature_start);

  // The head, fed by standardized features when they are cached at the cut.
  if (o.standardize && o.unfreeze == 0) feature = add_standardize(model, feature, train_x);
  attach_head(model, feature, head);

  // Every checkpoint carries the whole served model (with its initial
  // weights; the checkpoint's own tensors hold the trained ones), so that
  // `graft export` needs nothing else.
  FitOptions fit_options = o.fit;
  {
    std::string bytes = serialize_onnx(served_model(model, r.class_names, o.preprocess, r.cut),
                                       {.fold_batch_norm = false});  // keep the weights' names
    Tensor t(DType::kU8, {static_cast<int64_t>(bytes.size())});
    std::memcpy(t.raw(), bytes.data(), bytes.size());
    fit_options.checkpoint_extras["extra/model.onnx"] = t;
  }
  const auto train_start = Clock::now();
  Session part(extract(model, {r.cache_point}, {head.output}));  // shares the weights with `model`
  const Tensor& eval_x = val.samples.empty() ? test_x : val_x;
  const std::vector<int64_t>& eval_y = val.samples.empty() ? test_y : val_y;
  Tensor no_eval = Tensor(DType::kF32, [&] { Shape s = sample_shape; s.insert(s.begin(), 0); return s; }());
  FitCallbacks cb;
  if (progress) {
    cb.on_batch = [&](const FitProgress& p) { progress({"train", p.batch, p.batches, p, {}}); };
    cb.on_epoch = [&](const EpochRecord& e) { progress({"epoch", e.epoch, o.fit.epochs, {}, e}); };
  }
  r.fit = fit(part, train_x, train_y, eval_x.defined() ? eval_x : no_eval, eval_y, fit_options, cb);
  r.train_seconds = seconds_since(train_start);
  if (test_x.defined() && test_x.dim(0) > 0) r.test = evaluate_logits(predict(part, test_x), test_y);
  r.model = std::move(model);
  return r;
}

}  // namespace graft
