// graft train: the seed's transfer-learning job from the command line.
//
//   graft train MODEL TRAIN_IMAGES_DIR TRAIN_LIST TEST_IMAGES_DIR TEST_LIST [options]
//   graft train MODEL --train-folder DIR --test-folder DIR [options]
#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "graft/data.h"
#include "graft/file.h"
#include "graft/onnx.h"
#include "graft/report.h"
#include "graft/transfer.h"
#include "progress.h"

namespace graft::cli {

namespace fs = std::filesystem;

namespace {

struct TrainArgs {
  std::string model;
  std::vector<std::string> lists;  // TRAIN_IMAGES_DIR TRAIN_LIST TEST_IMAGES_DIR TEST_LIST
  std::string train_folder, test_folder;
  std::string class_names;  // a file, one class name a line
  std::string out = "out/train";
  std::string cut;
  int64_t classes = -1;
  int64_t epochs = 30, batch = 32;
  float lr = 1e-2f;
  std::string optimizer = "adam", schedule = "cosine";
  float weight_decay = 1e-4f, momentum = 0.9f, label_smoothing = 0.1f;
  double clip_norm = 0;
  int unfreeze = 0;
  bool augment = false;
  int views = 4;
  double val_split = 0;
  int early_stop = 0;
  uint64_t seed = 0;
  int workers = 2;
  bool resume = false, skip_bad = false, standardize = false, no_cache = false;
  std::string cache_dir;
  std::string head = "linear";
  bool baseline_random = false;
  float crop_fraction = 0;  // 0: the model's default
  bool stretch = false;
  int64_t hidden = 0;
  float dropout = 0;
};

std::string default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/graft";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/graft";
  return "";
}

// Identifies the model's content: the file, and a TF.js model's weight files.
std::string model_key(const std::string& path) {
  std::string key = hash_file(path);
  if (path.size() > 5 && path.substr(path.size() - 5) == ".json") {
    std::vector<std::string> bins;
    for (const auto& e : fs::directory_iterator(fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path()))
      if (e.path().extension() == ".bin") bins.push_back(e.path().string());
    std::sort(bins.begin(), bins.end());
    for (const std::string& b : bins) key += hash_file(b).substr(0, 8);
  }
  return key;
}

std::string metrics_jsonl(const FitResult& fit) {
  std::string out;
  for (const EpochRecord& e : fit.history)
    out += nlohmann::json({{"epoch", e.epoch}, {"step", e.step}, {"train_loss", e.train_loss},
                           {"train_accuracy", e.train_accuracy}, {"eval_loss", e.eval_loss},
                           {"eval_accuracy", e.eval_accuracy}, {"lr", e.lr}, {"seconds", e.seconds}})
               .dump() + "\n";
  return out;
}

ReportData make_report(const TrainArgs& a, const TransferResult& r, bool test_picked_best, const Dataset& test,
                       const Preprocess& p, std::vector<std::pair<std::string, double>> comparisons,
                       double total_seconds) {
  ReportData d;
  // A TF.js model is a folder's model.json: the folder names it.
  fs::path model(a.model);
  d.title = "graft train: " + (model.filename() == "model.json" && model.has_parent_path()
                                   ? model.parent_path().filename().string()
                                   : model.filename().string());
  d.settings = {{"model", a.model},
                {"cut", r.cut},
                {"features cached at", r.cache_point},
                {"unfrozen blocks", std::to_string(a.unfreeze)},
                {"head", a.head + (a.hidden ? fmt::format(", hidden {}", a.hidden) : "")},
                {"epochs", std::to_string(a.epochs)},
                {"batch", std::to_string(a.batch)},
                {"optimizer", fmt::format("{} (lr {}, weight decay {})", a.optimizer, a.lr, a.weight_decay)},
                {"schedule", a.schedule},
                {"label smoothing", fmt::format("{}", a.label_smoothing)},
                {"standardized features", a.standardize ? "yes" : "no"},
                {"augmentation", a.augment ? fmt::format("yes, {} views", a.views) : "no"},
                {"seed", std::to_string(a.seed)},
                {"input", fmt::format("{}×{} {}", p.size, p.size, p.nhwc ? "NHWC" : "NCHW")}};
  d.timings = {{"feature extraction", r.feature_seconds}, {"training", r.train_seconds}, {"total", total_seconds}};
  if (r.search_seconds > 0) d.timings.insert(d.timings.begin(), {"cut search", r.search_seconds});
  d.history = r.fit.history;
  d.best_epoch = r.fit.best_epoch;
  d.eval_name = test_picked_best ? "test" : "validation";
  d.test = r.test;
  d.class_names = r.class_names;
  d.thumbnail_preprocess = p;
  for (size_t row = 0; row < r.test.predictions.size(); ++row) {
    const Sample& s = test.samples.at(r.test_samples.at(row));
    if (r.test.predictions[row] != s.labels.at(0))
      d.misclassified.push_back({s.path, s.labels.at(0), r.test.predictions[row], r.test.confidences[row]});
  }
  d.comparisons = std::move(comparisons);
  d.cut_table = r.cut_table;
  if (test_picked_best)
    d.notes.push_back("There was no validation set (--val-split), so the test set picked the best epoch, "
                      "as the seed does: the test accuracy is optimistic.");
  if (!r.skipped.empty()) d.notes.push_back(fmt::format("{} bad samples were skipped.", r.skipped.size()));
  return d;
}

int train(const TrainArgs& a) {
  Graph pretrained = load_model(a.model);
  Dataset train_set, test_set, val_set;
  if (!a.lists.empty()) {
    GRAFT_CHECK(a.lists.size() == 4 && a.train_folder.empty(), kInvalidArgument,
                "give TRAIN_IMAGES_DIR TRAIN_LIST TEST_IMAGES_DIR TEST_LIST, or --train-folder/--test-folder");
    train_set = read_list_file(a.lists[0], a.lists[1], a.classes);
    test_set = read_list_file(a.lists[2], a.lists[3], a.classes > 0 ? a.classes : -1);
  } else {
    GRAFT_CHECK(!a.train_folder.empty(), kInvalidArgument,
                "no training data: give the seed's four list arguments or --train-folder");
    train_set = read_image_folder(a.train_folder);
    if (!a.test_folder.empty()) test_set = read_image_folder(a.test_folder);
  }
  if (!a.class_names.empty()) {
    std::vector<std::string> names;
    std::istringstream in(read_file(a.class_names));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) names.push_back(line);
    }
    const int64_t classes = std::max(train_set.num_classes, test_set.num_classes);
    GRAFT_CHECK(static_cast<int64_t>(names.size()) >= classes, kInvalidArgument,
                "{} names {} classes, the data has {}", a.class_names, names.size(), classes);
    train_set.class_names = test_set.class_names = names;
  }
  if (a.val_split > 0) std::tie(train_set, val_set) = split_stratified(train_set, a.val_split, a.seed);

  TransferOptions o;
  o.cut = a.cut;
  o.unfreeze = a.unfreeze;
  o.head.classes = a.classes;
  o.head.kind = a.head == "conv" ? HeadOptions::Kind::kConv1x1 : HeadOptions::Kind::kLinear;
  GRAFT_CHECK(a.head == "conv" || a.head == "linear", kInvalidArgument, "--head is linear or conv, not '{}'", a.head);
  o.head.hidden = a.hidden;
  o.head.dropout = a.dropout;
  o.head.seed = a.seed;
  o.standardize = a.standardize;
  o.fit.epochs = a.epochs;
  o.fit.batch = a.batch;
  o.fit.seed = a.seed;
  o.fit.optimizer = a.optimizer;
  o.fit.lr = a.lr;
  o.fit.momentum = a.momentum;
  o.fit.weight_decay = a.weight_decay;
  o.fit.schedule.kind = parse_schedule_kind(a.schedule);
  const int64_t views = a.augment ? a.views : 1;
  const int64_t steps_per_epoch = (static_cast<int64_t>(train_set.samples.size()) * views + a.batch - 1) / a.batch;
  o.fit.schedule.total_steps = a.epochs * steps_per_epoch;
  o.fit.schedule.step_size = std::max<int64_t>(1, a.epochs * steps_per_epoch / 3);
  o.fit.clip_norm = a.clip_norm;
  o.fit.loss.label_smoothing = a.label_smoothing;
  o.fit.early_stop = a.early_stop;
  o.fit.resume = a.resume;
  o.preprocess = preprocess_for(pretrained);
  if (a.crop_fraction > 0) o.preprocess.crop_fraction = a.crop_fraction;
  if (a.stretch) o.preprocess.keep_aspect = false;
  o.augment.enabled = a.augment;
  o.views = a.views;
  o.cache_dir = a.no_cache ? "" : (a.cache_dir.empty() ? default_cache_dir() : a.cache_dir);
  o.workers = a.workers;
  o.skip_bad = a.skip_bad;

  std::error_code ec;
  fs::create_directories(a.out, ec);
  GRAFT_CHECK(!ec, kIO, "{}: cannot create the output folder: {}", a.out, ec.message());
  check_folder_writable(a.out);   // a read-only folder fails now, not after the training
  remove_stale_temporaries(a.out);  // left by a killed run
  o.fit.checkpoint = (fs::path(a.out) / "checkpoint.ckpt").string();
  if (!a.resume && fs::exists(o.fit.checkpoint))
    std::cerr << "graft: starting afresh; " << o.fit.checkpoint << " will be replaced (use --resume to continue it)\n";
  if (a.resume && !fs::exists(o.fit.checkpoint))
    std::cerr << "graft: no checkpoint in " << a.out << " yet (the run was stopped before its first epoch ended); "
              << "starting from the beginning\n";

  std::cout << fmt::format("graft train: {} — {} training, {} validation, {} test images, {} classes\n", a.model,
                           train_set.samples.size(), val_set.samples.size(), test_set.samples.size(),
                           std::max({train_set.num_classes, test_set.num_classes, a.classes}));
  ProgressBar bar;
  const auto start = std::chrono::steady_clock::now();
  TransferResult r = transfer(pretrained, model_key(a.model), train_set, val_set, test_set, o,
                              [&](const TransferProgress& p) {
    if (p.stage == "train") {
      bar.update(fmt::format("epoch {}/{}", p.fit.epoch, p.fit.epochs), p.done, p.total,
                 fmt::format("loss {:.4f}  lr {:.2e}  {:.0f} samples/s  ETA {:.1f}s", p.fit.loss, p.fit.lr,
                             p.fit.samples_per_second, p.fit.eta_seconds));
    } else if (p.stage == "epoch") {
      bar.clear();
      const EpochRecord& e = p.epoch;
      std::cout << fmt::format("epoch {:>3}/{}  train loss {:.4f}  train acc {:.3f}  {} acc {:.3f}  lr {:.2e}  {:.2f}s\n",
                               e.epoch, p.total, e.train_loss, e.train_accuracy,
                               val_set.samples.empty() ? "test" : "val", e.eval_accuracy, e.lr, e.seconds)
                << std::flush;
    } else {
      bar.update(p.stage, p.done, p.total);
    }
  });
  bar.clear();

  // The outputs are made first and written together at the end (below).
  std::string served = serialize_onnx(served_model(r.model, r.class_names, o.preprocess, r.cut));
  std::string labels;
  for (const std::string& c : r.class_names) labels += c + "\n";

  std::vector<std::pair<std::string, double>> comparisons;
  if (a.baseline_random) {
    std::cout << "training the same recipe on a randomly initialised trunk, for comparison...\n";
    Graph random = pretrained;
    randomize_weights(random, a.seed);
    TransferOptions ro = o;
    ro.fit.checkpoint.clear();
    ro.fit.resume = false;
    ro.cache_dir.clear();  // nothing to reuse: features of random weights
    TransferResult b = transfer(random, "random", train_set, val_set, test_set, ro, [&](const TransferProgress& p) {
      if (p.stage != "train" && p.stage != "epoch") bar.update(p.stage + " (random trunk)", p.done, p.total);
    });
    bar.clear();
    comparisons = {{"pretrained trunk", r.test.accuracy}, {"random trunk", b.test.accuracy}};
    std::cout << fmt::format("test accuracy: pretrained trunk {:.4f}, random trunk {:.4f}\n", r.test.accuracy,
                             b.test.accuracy);
  }
  const double total_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // All or none: a full disk or a failure here leaves the previous run's
  // files as they were, and the model, renamed last, marks a finished set.
  auto out = [&](const char* name) { return (fs::path(a.out) / name).string(); };
  write_files_atomically(
      {{out("labels.txt"), labels},
       {out("metrics.jsonl"), metrics_jsonl(r.fit)},
       {out("report.html"),
        render_report(make_report(a, r, val_set.samples.empty(), test_set, o.preprocess, comparisons, total_seconds))},
       {out("model.onnx"), std::move(served)}});

  if (!r.cut_table.empty()) {
    std::cout << fmt::format("cut search ({:.1f}s): accuracy of a head on each block's pooled output\n", r.search_seconds);
    for (const auto& [cut, accuracy] : r.cut_table)
      std::cout << fmt::format("  {:<40} {:.3f}{}\n", cut, accuracy, cut == r.cut ? "  <- chosen" : "");
  }
  std::cout << fmt::format("cut at {} (features cached at {}): {} computed, {} from the cache, {:.1f}s\n", r.cut,
                           r.cache_point, r.features_computed, r.features_reused, r.feature_seconds);
  if (!r.skipped.empty()) {
    std::cout << r.skipped.size() << " bad samples skipped:\n";
    for (const std::string& s : r.skipped) std::cout << "  " << s << "\n";
  }
  std::cout << fmt::format("best epoch {} of {}{}; training {:.1f}s\n", r.fit.best_epoch, r.fit.history.size(),
                           r.fit.stopped_early ? " (stopped early)" : "", r.train_seconds);
  if (r.test.samples > 0)
    std::cout << fmt::format("test accuracy {:.4f} ({} images), top-{} {:.4f}\n", r.test.accuracy, r.test.samples,
                             r.test.k, r.test.top_k_accuracy);
  std::cout << "wrote " << (fs::path(a.out) / "model.onnx").string()
            << ", labels.txt, metrics.jsonl, checkpoint.ckpt and report.html\n";
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, std::function<int()>& action) {
  auto* cmd = app.add_subcommand("train", "Fine-tune a pretrained model on your images (the seed's job)");
  auto a = std::make_shared<TrainArgs>();
  cmd->add_option("MODEL", a->model, "Pretrained model (.onnx, or a TF.js model.json)")->required();
  cmd->add_option("LISTS", a->lists, "TRAIN_IMAGES_DIR TRAIN_LIST TEST_IMAGES_DIR TEST_LIST (the seed's form)")
      ->expected(0, 4);
  cmd->add_option("--train-folder", a->train_folder, "Training images, one subfolder per class");
  cmd->add_option("--test-folder", a->test_folder, "Test images, one subfolder per class");
  cmd->add_option("--class-names", a->class_names, "File naming the classes, one a line, for list files");
  cmd->add_option("--out", a->out, "Output folder")->capture_default_str();
  cmd->add_option("--cut", a->cut,
                  "Node or value to cut at (default: the last global pooling); 'search' tries every block");
  cmd->add_option("--classes", a->classes, "Number of classes (default: from the data)");
  cmd->add_option("--epochs", a->epochs)->capture_default_str();
  cmd->add_option("--batch", a->batch)->capture_default_str();
  cmd->add_option("--lr", a->lr, "Learning rate")->capture_default_str();
  cmd->add_option("--optimizer", a->optimizer, "sgd, adam or adamw")->capture_default_str();
  cmd->add_option("--schedule", a->schedule, "constant, step, multistep, cosine or inverse")->capture_default_str();
  cmd->add_option("--weight-decay", a->weight_decay)->capture_default_str();
  cmd->add_option("--momentum", a->momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--label-smoothing", a->label_smoothing)->capture_default_str();
  cmd->add_option("--clip-norm", a->clip_norm, "Clip gradients to this global norm (0: off)");
  cmd->add_option("--unfreeze", a->unfreeze, "Also train the last K blocks before the cut");
  cmd->add_flag("--augment", a->augment, "Random resized crops, flips and colour jitter, cached as views");
  cmd->add_option("--views", a->views, "Augmented views per image with --augment")->capture_default_str();
  cmd->add_option("--val-split", a->val_split, "Fraction of the training set held out to pick the best epoch");
  cmd->add_option("--early-stop", a->early_stop, "Stop after N epochs without a better accuracy");
  cmd->add_option("--seed", a->seed)->capture_default_str();
  cmd->add_option("--workers", a->workers, "Image decoding threads")->capture_default_str();
  cmd->add_flag("--resume", a->resume, "Continue from OUT/checkpoint.ckpt");
  cmd->add_option("--cache-dir", a->cache_dir, "Feature cache folder (default ~/.cache/graft)");
  cmd->add_flag("--no-cache", a->no_cache, "Keep features in memory only");
  cmd->add_flag("--skip-bad", a->skip_bad, "Skip unreadable images, list them at the end");
  cmd->add_flag("--standardize", a->standardize,
                "Z-score the features with the training set's statistics (part of the exported model)");
  cmd->add_option("--head", a->head, "linear, or conv (a 1x1 convolution, the seed's)")->capture_default_str();
  cmd->add_option("--hidden", a->hidden, "A hidden layer of this width in the head");
  cmd->add_option("--dropout", a->dropout, "Dropout before the head's last layer");
  cmd->add_option("--crop-fraction", a->crop_fraction,
                  "Centre crop this fraction after resizing (default 0.875, the seed's; 1: no crop)");
  cmd->add_flag("--stretch", a->stretch, "Resize both sides (ignoring the aspect ratio) instead of the shorter side");
  cmd->add_flag("--baseline-random", a->baseline_random,
                "Also train the same recipe on a randomly initialised trunk, for comparison");
  cmd->set_config("--config", "", "Read these options from a TOML/INI file");
  cmd->callback([&action, a] { action = [a] { return train(*a); }; });
}

}  // namespace graft::cli
