// What the `graft train` tests share: a small image set (24 noisy 40×40 PNGs
// of two classes, dark red and bright cyan; 16 listed in train.txt, 8 in
// test.txt; names.txt), the seed-form command line that trains the test
// model on it, and a check that an output folder holds only whole files.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graft/checkpoint.h"
#include "graft/file.h"
#include "graft/onnx.h"
#include "graft/report.h"
#include "graft/transfer.h"

namespace graft::test {

// Writes the image set into `dir` (images/, train.txt, test.txt, names.txt).
inline void write_two_colour_images(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  fs::remove_all(dir);
  fs::create_directories(dir / "images");
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> noise(0, 90);
  std::ofstream train(dir / "train.txt"), test(dir / "test.txt");
  for (int i = 0; i < 24; ++i) {
    int label = i % 2;
    Image img;
    img.width = img.height = 40;
    img.pixels.resize(40 * 40 * 3);
    for (int p = 0; p < 40 * 40; ++p) {
      // Dark reds against bright blues: even untrained features tell them apart.
      img.pixels[p * 3 + 0] = static_cast<uint8_t>((label ? 100 : 80) + noise(rng));
      img.pixels[p * 3 + 1] = static_cast<uint8_t>((label ? 160 : 0) + noise(rng));
      img.pixels[p * 3 + 2] = static_cast<uint8_t>((label ? 160 : 0) + noise(rng));
    }
    std::string name = "img " + std::to_string(i) + ".png";  // a space in the path
    write_file_atomically((dir / "images" / name).string(), encode_png(img));
    (i < 16 ? train : test) << name << " " << label << "\n";
  }
  std::ofstream(dir / "names.txt") << "red\nblue\n";
}

// `graft train` in the seed's form on the set in `dir`, without a feature
// cache, writing to `out` (no binary name: see graft_cli).
inline std::string seed_train_args(const std::filesystem::path& dir, const std::string& out) {
  const std::string images = (dir / "images").string();
  return "train " + std::string(GRAFT_TEST_DATA) + "/models/mobilenet_v2_025/model.onnx " + images + " " +
         (dir / "train.txt").string() + " " + images + " " + (dir / "test.txt").string() + " --class-names " +
         (dir / "names.txt").string() + " --no-cache --out " + out;
}

inline std::vector<std::string> file_lines(const std::string& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// metrics.jsonl without the wall-clock "seconds" field, which no two runs share.
inline std::vector<std::string> metrics_without_time(const std::string& file) {
  std::vector<std::string> v = file_lines(file);
  for (std::string& l : v) l = l.substr(0, l.find("\"seconds\""));
  return v;
}

// Expects `dir` to hold nothing but whole outputs of a run of `epochs` epochs
// (each present file loads or parses completely) and, per output, at most one
// temporary file left by a killed writer. `when` names the moment for messages.
inline void expect_only_whole_outputs(const std::filesystem::path& dir, int epochs, const std::string& when) {
  namespace fs = std::filesystem;
  SCOPED_TRACE(when);
  if (!fs::exists(dir)) return;  // killed before it made the folder
  const std::vector<std::string> outputs = {"model.onnx", "checkpoint.ckpt", "labels.txt", "metrics.jsonl",
                                            "report.html"};
  std::map<std::string, int> temporaries;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (is_temporary_file_name(name)) {
      EXPECT_EQ(name[0], '.') << name << ": a temporary file must be hidden";
      for (const std::string& o : outputs)
        if (name.rfind("." + o + ".tmp.", 0) == 0) ++temporaries[o];
      continue;
    }
    EXPECT_NE(std::find(outputs.begin(), outputs.end(), name), outputs.end()) << "unexpected file " << name;
  }
  for (const auto& [output, count] : temporaries)
    EXPECT_LE(count, 1) << count << " temporary files of " << output << " accumulated";

  const std::string p = dir.string() + "/";
  try {
    if (fs::exists(p + "model.onnx")) {
      EXPECT_EQ(class_names_of(load_onnx(p + "model.onnx")), (std::vector<std::string>{"red", "blue"}));
    }
    if (fs::exists(p + "checkpoint.ckpt")) {
      Checkpoint c = load_checkpoint(p + "checkpoint.ckpt");
      EXPECT_GE(c.epoch, 1);
      EXPECT_LE(c.epoch, epochs);
    }
  } catch (const Error& e) {
    ADD_FAILURE() << "a half-written output: " << e.what();
  }
  if (fs::exists(p + "labels.txt")) {
    EXPECT_EQ(read_file(p + "labels.txt"), "red\nblue\n");
  }
  if (fs::exists(p + "metrics.jsonl")) {
    std::vector<std::string> records = file_lines(p + "metrics.jsonl");
    EXPECT_EQ(static_cast<int>(records.size()), epochs);
    for (size_t i = 0; i < records.size(); ++i) {
      nlohmann::json j = nlohmann::json::parse(records[i], nullptr, /*allow_exceptions=*/false);
      ASSERT_FALSE(j.is_discarded()) << "metrics.jsonl line " << i + 1 << ": " << records[i];
      EXPECT_EQ(j.value("epoch", -1), static_cast<int>(i) + 1);
    }
    EXPECT_EQ(read_file(p + "metrics.jsonl").back(), '\n');
  }
  if (fs::exists(p + "report.html")) {
    const std::string report = read_file(p + "report.html");
    EXPECT_EQ(report.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_TRUE(report.ends_with("</html>\n")) << "report.html is cut short";
  }
}

}  // namespace graft::test
