#include "graft/fit.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "core/fault.h"
#include "graft/checkpoint.h"

namespace graft {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::unique_ptr<Optimizer> make_optimizer(const FitOptions& o) {
  if (o.optimizer == "sgd") return make_sgd({o.momentum, o.weight_decay, o.nesterov});
  if (o.optimizer == "adam") return make_adam({0.9f, 0.999f, 1e-8f, o.weight_decay, false});
  if (o.optimizer == "adamw") return make_adam({0.9f, 0.999f, 1e-8f, o.weight_decay, true});
  fail(ErrorKind::kInvalidArgument, "unknown optimizer '{}' (sgd, adam, adamw)", o.optimizer);
}

// The epoch's sample order: a seeded shuffle that depends only on (seed,
// epoch), so a resumed run sees the same batches.
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates with a portable index draw
    int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

std::map<std::string, Tensor> snapshot(Session& model) {
  std::map<std::string, Tensor> values;
  for (const std::string& name : model.variables()) values[name] = model.graph().initializers.at(name).clone();
  return values;
}

void restore(Session& model, const std::map<std::string, Tensor>& values, const std::string& prefix = "") {
  for (const std::string& name : model.variables()) {
    auto it = values.find(prefix + name);
    GRAFT_CHECK(it != values.end(), kCorruption, "the checkpoint has no value for '{}'", name);
    const Tensor& dst = model.graph().initializers.at(name);
    GRAFT_CHECK(it->second.shape() == dst.shape() && it->second.dtype() == dst.dtype(), kCorruption,
                "the checkpoint's '{}' is {} {}, the model's {} {}", name, dtype_name(it->second.dtype()),
                shape_str(it->second.shape()), dtype_name(dst.dtype()), shape_str(dst.shape()));
    std::memcpy(const_cast<void*>(dst.raw()), it->second.raw(), dst.nbytes());  // shares storage with the session
  }
}

nlohmann::json to_json(const EpochRecord& r) {
  return {{"epoch", r.epoch},           {"step", r.step},
          {"train_loss", r.train_loss}, {"train_accuracy", r.train_accuracy},
          {"eval_loss", r.eval_loss},   {"eval_accuracy", r.eval_accuracy},
          {"lr", r.lr},                 {"seconds", r.seconds}};
}

EpochRecord record_from_json(const nlohmann::json& j) {
  EpochRecord r;
  r.epoch = j.at("epoch");
  r.step = j.at("step");
  r.train_loss = j.at("train_loss");
  r.train_accuracy = j.at("train_accuracy");
  r.eval_loss = j.at("eval_loss");
  r.eval_accuracy = j.at("eval_accuracy");
  r.lr = j.at("lr");
  r.seconds = j.at("seconds");
  return r;
}

}  // namespace

Tensor gather_rows(const Tensor& x, const std::vector<int64_t>& indices) {
  GRAFT_CHECK(x.rank() >= 1, kInvalidArgument, "cannot take rows of a scalar");
  Shape shape = x.shape();
  const int64_t rows = shape[0];
  shape[0] = static_cast<int64_t>(indices.size());
  Tensor out(x.dtype(), shape);
  const size_t row_bytes = rows ? x.nbytes() / static_cast<size_t>(rows) : 0;
  for (size_t i = 0; i < indices.size(); ++i) {
    GRAFT_CHECK(indices[i] >= 0 && indices[i] < rows, kInvalidArgument, "row {} of {}", indices[i], rows);
    std::memcpy(static_cast<uint8_t*>(out.raw()) + i * row_bytes,
                static_cast<const uint8_t*>(x.raw()) + indices[i] * row_bytes, row_bytes);
  }
  return out;
}

Tensor predict(Session& model, const Tensor& x, int64_t batch) {
  const Graph& g = model.graph();
  GRAFT_CHECK(g.inputs.size() == 1 && g.outputs.size() == 1, kInvalidArgument,
              "predict needs a model with one input and one output");
  const bool was_training = model.training();
  model.set_training(false);
  const int64_t n = x.dim(0);
  std::vector<Tensor> parts;
  for (int64_t start = 0; start < n; start += batch) {
    std::vector<int64_t> rows(static_cast<size_t>(std::min(batch, n - start)));
    std::iota(rows.begin(), rows.end(), start);
    parts.push_back(model.run({{g.inputs[0].name, gather_rows(x, rows)}}).at(g.outputs[0].name));
  }
  model.set_training(was_training);
  GRAFT_CHECK(!parts.empty(), kInvalidArgument, "nothing to predict: no samples");
  Shape shape = parts[0].shape();
  shape[0] = n;
  Tensor out(parts[0].dtype(), shape);
  size_t offset = 0;
  for (const Tensor& p : parts) {
    std::memcpy(static_cast<uint8_t*>(out.raw()) + offset, p.raw(), p.nbytes());
    offset += p.nbytes();
  }
  return out;
}

FitResult fit(Session& model, const Tensor& train_x, const std::vector<int64_t>& train_y,
              const Tensor& eval_x, const std::vector<int64_t>& eval_y, const FitOptions& o,
              const FitCallbacks& callbacks) {
  const Graph& g = model.graph();
  GRAFT_CHECK(g.inputs.size() == 1 && g.outputs.size() == 1, kInvalidArgument,
              "fit needs a model with one input and one output");
  GRAFT_CHECK(!model.parameters().empty(), kInvalidArgument, "the model has no trainable parameters");
  const int64_t n = train_x.dim(0);
  GRAFT_CHECK(n > 0 && static_cast<int64_t>(train_y.size()) == n, kInvalidArgument,
              "{} training samples with {} labels", n, train_y.size());
  GRAFT_CHECK(eval_x.dim(0) == static_cast<int64_t>(eval_y.size()), kInvalidArgument,
              "{} evaluation samples with {} labels", eval_x.dim(0), eval_y.size());
  GRAFT_CHECK(o.epochs >= 1 && o.batch >= 1, kInvalidArgument, "epochs and batch must be positive");
  const std::string& input = g.inputs[0].name;
  const std::string& output = g.outputs[0].name;
  auto optimizer = make_optimizer(o);
  Schedule schedule = o.schedule;
  schedule.base_lr = o.lr;

  FitResult result;
  int64_t step = 0, first_epoch = 0;
  std::map<std::string, Tensor> best_values = snapshot(model);
  double best_accuracy = -1;
  const std::string fingerprint = graph_fingerprint(g);
  if (o.resume && !o.checkpoint.empty() && std::filesystem::exists(o.checkpoint)) {
    Checkpoint c = load_checkpoint(o.checkpoint);
    GRAFT_CHECK(c.graph_fingerprint == fingerprint, kInvalidArgument,
                "{}: this checkpoint belongs to a different model or cut (graph {} vs {})",
                o.checkpoint, c.graph_fingerprint, fingerprint);
    with_context(o.checkpoint, [&] {
      restore(model, c.tensors, "value/");
      std::map<std::string, Tensor> optim_state, best;
      for (const auto& [k, t] : c.tensors) {
        if (k.rfind("optim/", 0) == 0) optim_state[k.substr(6)] = t;
        if (k.rfind("best/", 0) == 0) best[k.substr(5)] = t;
      }
      optimizer->load_state(optim_state);
      best_values = best;
      for (const auto& j : nlohmann::json::parse(c.info.at("history"))) result.history.push_back(record_from_json(j));
      result.best_epoch = std::stoll(c.info.at("best_epoch"));
      best_accuracy = std::stod(c.info.at("best_accuracy"));
    });
    step = c.step;
    first_epoch = c.epoch;
    result.resumed = true;
  }

  int64_t epochs_without_gain = 0;
  for (const EpochRecord& r : result.history)  // early stopping continues where it was
    epochs_without_gain = r.epoch == result.best_epoch ? 0 : epochs_without_gain + 1;
  for (int64_t epoch = first_epoch; epoch < o.epochs; ++epoch) {
    if (o.early_stop > 0 && epochs_without_gain >= o.early_stop) {
      result.stopped_early = true;
      break;
    }
    const auto start = Clock::now();
    model.set_training(true);
    model.set_seed(o.seed, static_cast<uint64_t>(step));
    std::vector<int64_t> order = epoch_order(n, o.seed, epoch);
    const int64_t batches = (n + o.batch - 1) / o.batch;
    double loss_sum = 0;
    int64_t correct = 0;
    float lr = schedule.lr_at(step);
    for (int64_t b = 0; b < batches; ++b) {
      std::vector<int64_t> rows(order.begin() + b * o.batch, order.begin() + std::min(n, (b + 1) * o.batch));
      std::vector<int64_t> labels;
      for (int64_t r : rows) labels.push_back(train_y[r]);
      model.zero_grad();
      Tensor logits = model.run({{input, gather_rows(train_x, rows)}}).at(output);
      LossResult loss = softmax_cross_entropy(logits, labels, o.loss);
      GRAFT_CHECK(std::isfinite(loss.value), kInvalidArgument,
                  "the loss became {} at step {} (epoch {}); the last good checkpoint is kept{}",
                  std::isnan(loss.value) ? "NaN" : "infinite", step + 1, epoch + 1,
                  o.checkpoint.empty() ? "" : " in " + o.checkpoint);
      model.backward({{output, loss.grad}});
      if (o.clip_norm > 0) clip_grad_norm(model.parameters(), o.clip_norm);
      lr = schedule.lr_at(step);
      optimizer->step(model.parameters(), lr);
      ++step;
      fault_point("step");  // the crash tests' mid-epoch kill
      loss_sum += loss.value * static_cast<double>(rows.size());
      correct += static_cast<int64_t>(std::count_if(rows.begin(), rows.end(), [&, i = 0](int64_t) mutable {
        int64_t k = i++;
        const float* z = logits.data<float>() + k * logits.dim(1);
        return std::max_element(z, z + logits.dim(1)) - z == labels[k];
      }));
      if (callbacks.on_batch) {
        double done = static_cast<double>(std::min(n, (b + 1) * o.batch));
        double secs = seconds_since(start);
        callbacks.on_batch({epoch + 1, o.epochs, b + 1, batches, loss_sum / done, lr, done / std::max(secs, 1e-9),
                            secs / done * static_cast<double>(n - static_cast<int64_t>(done))});
      }
    }
    EpochRecord rec;
    rec.epoch = epoch + 1;
    rec.step = step;
    rec.train_loss = loss_sum / static_cast<double>(n);
    rec.train_accuracy = static_cast<double>(correct) / static_cast<double>(n);
    rec.lr = lr;
    if (eval_x.dim(0) > 0) {
      Evaluation ev = evaluate_logits(predict(model, eval_x), eval_y);
      rec.eval_loss = ev.loss;
      rec.eval_accuracy = ev.accuracy;
    }
    rec.seconds = seconds_since(start);
    // Strictly better only, so ties keep the earlier (less trained) epoch.
    if (rec.eval_accuracy > best_accuracy) {
      best_accuracy = rec.eval_accuracy;
      result.best_epoch = rec.epoch;
      best_values = snapshot(model);
      epochs_without_gain = 0;
    } else {
      ++epochs_without_gain;
    }
    result.history.push_back(rec);
    if (!o.checkpoint.empty()) {
      Checkpoint c;
      c.graph_fingerprint = fingerprint;
      c.step = step;
      c.epoch = epoch + 1;
      nlohmann::json history = nlohmann::json::array();
      for (const EpochRecord& r : result.history) history.push_back(to_json(r));
      c.info["history"] = history.dump();
      c.info["best_epoch"] = std::to_string(result.best_epoch);
      c.info["best_accuracy"] = fmt::format("{:.17g}", best_accuracy);
      for (const std::string& name : model.variables()) c.tensors["value/" + name] = g.initializers.at(name);
      for (const auto& [k, t] : optimizer->state()) c.tensors["optim/" + k] = t;
      for (const auto& [k, t] : best_values) c.tensors["best/" + k] = t;
      for (const auto& [k, t] : o.checkpoint_extras) c.tensors[k] = t;
      save_checkpoint(o.checkpoint, c);
    }
    if (callbacks.on_epoch) callbacks.on_epoch(rec);
  }
  restore(model, best_values);
  model.set_training(false);
  if (eval_x.dim(0) > 0) result.best = evaluate_logits(predict(model, eval_x), eval_y);
  return result;
}

}  // namespace graft
