// graft predict MODEL IMAGE...: top-k classes with names and probabilities.
// graft eval MODEL (--list LIST --dir DIR | --folder DIR): accuracy, top-k,
// per-class metrics and the confusion matrix.
#include <cmath>
#include <iostream>

#include "commands.h"
#include "graft/data.h"
#include "graft/fit.h"
#include "graft/metrics.h"

namespace graft::cli {

namespace {

// Scores of a batch of images: probabilities if the model ends in Softmax
// (as graft's exported models do), otherwise the raw outputs.
Tensor scores(Session& model, const std::vector<std::string>& paths, const Preprocess& p) {
  Shape shape = p.nhwc ? Shape{static_cast<int64_t>(paths.size()), p.size, p.size, 3}
                       : Shape{static_cast<int64_t>(paths.size()), 3, p.size, p.size};
  Tensor batch(DType::kF32, shape);
  const int64_t per_image = 3 * p.size * p.size;
  for (size_t i = 0; i < paths.size(); ++i)
    load_image_into(paths[i], p, {}, 0, batch.data<float>() + i * per_image);
  const Graph& g = model.graph();
  Tensor out = model.run({{g.inputs.at(0).name, batch}}).at(g.outputs.at(0).name);
  GRAFT_CHECK(out.rank() == 2, kInvalidArgument, "the model's output is {}, not [batch, classes]",
              shape_str(out.shape()));
  return out;
}

std::string class_name(const std::vector<std::string>& names, int64_t c) {
  return c < static_cast<int64_t>(names.size()) ? names[c] : std::to_string(c);
}

int predict_images(const std::string& path, const std::vector<std::string>& images, int64_t top) {
  Graph g = load_model(path);
  const Preprocess p = preprocess_for(g);
  const std::vector<std::string> names = class_names_of(g);
  const bool probabilities = !g.nodes.empty() && g.nodes.back().op_type == "Softmax";
  Session model(std::move(g));
  for (const std::string& image : images) {
    Tensor s = scores(model, {image}, p);
    const int64_t c = s.dim(1);
    std::vector<int64_t> order(c);
    for (int64_t k = 0; k < c; ++k) order[k] = k;
    const float* z = s.data<float>();
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return z[a] > z[b]; });
    std::cout << image << "\n";
    for (int64_t k = 0; k < std::min(top, c); ++k)
      std::cout << fmt::format("  {:<24} {}{:.4f}\n", class_name(names, order[k]),
                               probabilities ? "" : "score ", z[order[k]]);
  }
  return 0;
}

int eval_model(const std::string& path, const std::string& list, const std::string& dir,
               const std::string& folder, int64_t top, int64_t batch) {
  Graph g = load_model(path);
  const Preprocess p = preprocess_for(g);
  std::vector<std::string> names = class_names_of(g);
  Dataset d = folder.empty() ? read_list_file(dir, list) : read_image_folder(folder);
  if (names.empty()) names = d.class_names;
  Session model(std::move(g));
  std::vector<Tensor> parts;
  std::vector<int64_t> labels;
  for (size_t start = 0; start < d.samples.size(); start += batch) {
    std::vector<std::string> paths;
    for (size_t i = start; i < std::min(d.samples.size(), start + batch); ++i) {
      paths.push_back(d.samples[i].path);
      labels.push_back(d.samples[i].labels.at(0));
    }
    parts.push_back(scores(model, paths, p));
  }
  const int64_t c = parts.at(0).dim(1);
  Tensor all(DType::kF32, {static_cast<int64_t>(labels.size()), c});
  size_t offset = 0;
  for (const Tensor& t : parts) {
    std::memcpy(all.data<float>() + offset, t.data<float>(), t.nbytes());
    offset += t.numel();
  }
  // Softmax outputs give the same ranking as logits; log turns them back
  // into logits for the loss.
  if (!model.graph().nodes.empty() && model.graph().nodes.back().op_type == "Softmax")
    for (int64_t i = 0; i < all.numel(); ++i) all.data<float>()[i] = std::log(std::max(all.data<float>()[i], 1e-30f));
  Evaluation e = evaluate_logits(all, labels, top);
  std::cout << fmt::format("{} images: accuracy {:.4f}, top-{} {:.4f}, loss {:.4f}\n", e.samples, e.accuracy, e.k,
                           e.top_k_accuracy, e.loss);
  std::cout << fmt::format("\n{:<20} {:>9} {:>9} {:>9} {:>8}\n", "class", "precision", "recall", "f1", "support");
  for (int64_t k = 0; k < c; ++k)
    std::cout << fmt::format("{:<20} {:>9.3f} {:>9.3f} {:>9.3f} {:>8}\n", class_name(names, k),
                             e.per_class[k].precision, e.per_class[k].recall, e.per_class[k].f1,
                             e.per_class[k].support);
  std::cout << "\nconfusion matrix (rows: true, columns: predicted)\n";
  for (int64_t k = 0; k < c; ++k) {
    std::cout << fmt::format("{:<20}", class_name(names, k));
    for (int64_t j = 0; j < c; ++j) std::cout << fmt::format(" {:>5}", e.confusion[k][j]);
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

void add_predict_command(CLI::App& app, std::function<int()>& action) {
  auto* cmd = app.add_subcommand("predict", "Classify images with a model: top-k classes and probabilities");
  auto path = std::make_shared<std::string>();
  auto images = std::make_shared<std::vector<std::string>>();
  auto top = std::make_shared<int64_t>(5);
  cmd->add_option("MODEL", *path, "Model (e.g. OUT/model.onnx from graft train)")->required();
  cmd->add_option("IMAGE", *images, "Images (JPEG or PNG)")->required();
  cmd->add_option("--top", *top, "How many classes to show")->capture_default_str();
  cmd->callback([&action, path, images, top] { action = [=] { return predict_images(*path, *images, *top); }; });
}

void add_eval_command(CLI::App& app, std::function<int()>& action) {
  auto* cmd = app.add_subcommand("eval", "Accuracy, top-k, per-class metrics and confusion matrix on a data set");
  auto path = std::make_shared<std::string>();
  auto list = std::make_shared<std::string>(), dir = std::make_shared<std::string>(),
       folder = std::make_shared<std::string>();
  auto top = std::make_shared<int64_t>(5), batch = std::make_shared<int64_t>(32);
  cmd->add_option("MODEL", *path, "Model")->required();
  cmd->add_option("--list", *list, "List file in the seed's format");
  cmd->add_option("--dir", *dir, "Images folder the list's paths are relative to");
  cmd->add_option("--folder", *folder, "Images in one subfolder per class (instead of --list/--dir)");
  cmd->add_option("--top", *top)->capture_default_str();
  cmd->add_option("--batch", *batch)->capture_default_str();
  cmd->callback([&action, path, list, dir, folder, top, batch] {
    action = [=] {
      GRAFT_CHECK(!folder->empty() || (!list->empty() && !dir->empty()), kInvalidArgument,
                  "give --list and --dir, or --folder");
      return eval_model(*path, *list, *dir, *folder, *top, *batch);
    };
  });
}

}  // namespace graft::cli
