// The seed's program — MNN's "MobilenetV2Transfer" demo — in graft's API:
// load a pretrained MobileNetV2, look up its last average pool by name, keep
// everything before it as a frozen feature extractor, put a new 1×1
// convolution classifier on top, train only that on your images, report the
// test accuracy, save the model.
//
//   mobilenet_v2_transfer MODEL TRAIN_IMAGES_DIR TRAIN_LIST TEST_IMAGES_DIR TEST_LIST
#include <cstdio>

#include "graft/data.h"
#include "graft/fit.h"
#include "graft/onnx.h"
#include "graft/transfer.h"

using namespace graft;

int main(int argc, char** argv) try {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s MODEL TRAIN_IMAGES_DIR TRAIN_LIST TEST_IMAGES_DIR TEST_LIST\n", argv[0]);
    return 2;
  }
  Graph pretrained = load_model(argv[1]);
  const std::string input = pretrained.inputs.at(0).name;
  // The node before the classifier (the seed's "MobilenetV2/Logits/AvgPool").
  const std::string pool = suggest_cut_points(pretrained).at(0);
  Dataset train = read_list_file(argv[2], argv[3]);
  Dataset test = read_list_file(argv[4], argv[5], train.num_classes);

  // The frozen feature extractor. Its features never change: compute them once.
  Graph model = extract(pretrained, {input}, {pool});
  Session extractor(model);
  FeatureCacheOptions cache_options;
  cache_options.preprocess = preprocess_for(pretrained);
  FeatureCache cache(cache_options);
  auto features = [&](const Dataset& d) {  // [N, 1280] rows as [N, 1280, 1, 1]
    Tensor rows = cache.features(d, extractor, input, pool);
    return rows.reshaped({rows.dim(0), rows.dim(1), 1, 1});
  };
  auto labels = [](const Dataset& d) {
    std::vector<int64_t> y;
    for (const Sample& s : d.samples) y.push_back(s.labels.at(0));
    return y;
  };

  // A new classifier: a 1×1 convolution from the 1280 features to our classes,
  // the only part that trains.
  HeadOptions head;
  head.classes = train.num_classes;
  head.kind = HeadOptions::Kind::kConv1x1;
  attach_head(model, pool, head);
  Session classifier(extract(model, {pool}, {head.output}));

  // The seed's recipe: Adam with weight decay 4e-5, learning rate 0.001 with
  // the "inverse" schedule lr * (1 + 1e-4 * step)^-0.75, batch 32.
  FitOptions recipe;
  recipe.optimizer = "adam";
  recipe.lr = 1e-3f;
  recipe.weight_decay = 4e-5f;
  recipe.schedule.kind = Schedule::Kind::kInverse;
  recipe.schedule.gamma = 1e-4f;
  recipe.schedule.power = 0.75f;
  recipe.batch = 32;
  recipe.epochs = 50;
  FitCallbacks print;
  print.on_epoch = [](const EpochRecord& e) {
    std::printf("epoch %lld: train loss %.4f, test accuracy %.4f\n", static_cast<long long>(e.epoch),
                e.train_loss, e.eval_accuracy);
  };
  FitResult result = fit(classifier, features(train), labels(train), features(test), labels(test), recipe, print);
  std::printf("test accuracy %.4f (best epoch %lld)\n", result.best.accuracy,
              static_cast<long long>(result.best_epoch));

  save_onnx(served_model(model, train.class_names, cache_options.preprocess, pool), "mobilenet_v2_transfer.onnx");
  std::printf("saved mobilenet_v2_transfer.onnx\n");
  return 0;
} catch (const Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
