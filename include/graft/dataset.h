// Image data sets: the seed's list files, one-folder-per-class layouts, and a
// seeded stratified validation split. Reading a data set only parses names
// and labels; images are opened later (graft/loader.h), so a missing or
// broken image is reported, or skipped, when it is loaded.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace graft {

struct Sample {
  std::string path;             // the image file
  std::vector<int64_t> labels;  // one label, or several for multi-label data
  std::string source;           // where the sample was declared, for errors: "list.txt:12"
};

struct Dataset {
  std::vector<Sample> samples;
  std::vector<std::string> class_names;  // num_classes entries; "0", "1", ... for list files
  int64_t num_classes = 0;

  // True when some sample has other than exactly one label: the loader then
  // also gives multi-hot targets.
  bool multi_label() const;
};

// Reads the seed's list format: one sample a line, `relative/path label`,
// several labels comma-separated (`a.jpg 0,3`). The label field is the last
// whitespace-separated field, so paths may contain spaces; the image path is
// `images_dir` joined with the rest of the line. Blank lines, lines starting
// with `#`, CRLF endings and a UTF-8 byte-order mark are accepted.
// `num_classes` -1 means the largest label + 1; otherwise every label must
// be below it. Errors (kNotFound for a missing list, kCorruption for a
// malformed line, a label that is not a non-negative integer or is out of
// range, kInvalidArgument for a list without samples) name the file and line.
Dataset read_list_file(const std::string& images_dir, const std::string& list_file,
                       int64_t num_classes = -1);

// Reads `root/<class>/<image>`: one subfolder per class, classes in sorted
// folder-name order, images (.jpg, .jpeg, .png, any case; hidden files are
// ignored) in sorted name order. With `class_names_file` (one name a line,
// blank lines and `#` comments ignored) the classes and their order come from
// that file instead: a folder it does not name is an error, a name without a
// folder is a class without samples. An empty data set is an error.
Dataset read_image_folder(const std::string& root, const std::string& class_names_file = "");

// Splits off a validation set: from each class (a sample's first label),
// round(count * val_fraction) samples chosen by `seed`, but never a class's
// last training sample. Both parts keep the original order. val_fraction is
// in [0, 1).
std::pair<Dataset, Dataset> split_stratified(const Dataset& d, double val_fraction, uint64_t seed);

}  // namespace graft
