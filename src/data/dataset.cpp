#include "graft/dataset.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "data/random.h"
#include "graft/error.h"
#include "graft/file.h"

namespace graft {

namespace fs = std::filesystem;

bool Dataset::multi_label() const {
  return std::any_of(samples.begin(), samples.end(),
                     [](const Sample& s) { return s.labels.size() != 1; });
}

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Lines without their endings (LF or CRLF), after a UTF-8 byte-order mark.
std::vector<std::string_view> split_lines(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

bool skippable(std::string_view line) { return line.empty() || line.front() == '#'; }

// Labels index classes, and a list file's classes get a name each: a label
// this large is a damaged line, not a data set (and label + 1 must not
// overflow).
constexpr int64_t kMaxLabel = 999'999;

// "0,3" -> {0, 3}; throws kCorruption for anything but non-negative integers.
std::vector<int64_t> parse_labels(std::string_view field) {
  std::vector<int64_t> labels;
  size_t start = 0;
  while (true) {
    size_t comma = field.find(',', start);
    std::string_view item =
        field.substr(start, comma == std::string_view::npos ? comma : comma - start);
    int64_t value = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    GRAFT_CHECK(!item.empty() && ec == std::errc() && end == item.data() + item.size(), kCorruption,
                "label '{}' is not a number", item);
    GRAFT_CHECK(value >= 0, kCorruption, "label {} is negative", value);
    GRAFT_CHECK(value <= kMaxLabel, kCorruption, "label {} is too large (at most {})", value,
                kMaxLabel);
    labels.push_back(value);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return labels;
}

std::vector<std::string> number_names(int64_t n) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < n; ++i) names.push_back(std::to_string(i));
  return names;
}

}  // namespace

Dataset read_list_file(const std::string& images_dir, const std::string& list_file,
                       int64_t num_classes) {
  GRAFT_CHECK(num_classes == -1 || num_classes > 0, kInvalidArgument,
              "{}: num_classes must be positive or -1, got {}", list_file, num_classes);
  GRAFT_CHECK(fs::is_regular_file(list_file), kNotFound, "{}: list file not found", list_file);
  std::string text = read_file(list_file);
  Dataset d;
  int64_t max_label = -1;
  std::vector<std::string_view> lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string where = fmt::format("{}:{}", list_file, i + 1);
    std::string_view line = trim(lines[i]);
    if (skippable(line)) continue;
    size_t gap = line.find_last_of(" \t");
    if (gap == std::string_view::npos)
      fail(ErrorKind::kCorruption, "{}: expected 'path label', got '{}'", where, line);
    std::string_view path = trim(line.substr(0, gap));
    Sample s;
    s.labels = with_context(where, [&] { return parse_labels(line.substr(gap + 1)); });
    for (int64_t label : s.labels) {
      GRAFT_CHECK(num_classes < 0 || label < num_classes, kCorruption,
                  "{}: label {} is out of range for {} classes (0..{})", where, label, num_classes,
                  num_classes - 1);
      max_label = std::max(max_label, label);
    }
    s.path = (fs::path(images_dir) / fs::path(std::string(path))).string();
    s.source = std::move(where);
    d.samples.push_back(std::move(s));
  }
  GRAFT_CHECK(!d.samples.empty(), kInvalidArgument,
              "{}: no samples (only blank lines and comments)", list_file);
  d.num_classes = num_classes > 0 ? num_classes : max_label + 1;
  d.class_names = number_names(d.num_classes);
  return d;
}

namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

bool hidden(const fs::path& p) { return p.filename().string().rfind('.', 0) == 0; }

std::vector<std::string> read_class_names(const std::string& file) {
  GRAFT_CHECK(fs::is_regular_file(file), kNotFound, "{}: class names file not found", file);
  std::string text = read_file(file);
  std::vector<std::string> names;
  std::set<std::string> seen;
  std::vector<std::string_view> lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view name = trim(lines[i]);
    if (skippable(name)) continue;
    GRAFT_CHECK(seen.insert(std::string(name)).second, kCorruption,
                "{}:{}: class '{}' is listed twice", file, i + 1, name);
    names.emplace_back(name);
  }
  GRAFT_CHECK(!names.empty(), kInvalidArgument, "{}: no class names", file);
  return names;
}

}  // namespace

Dataset read_image_folder(const std::string& root, const std::string& class_names_file) {
  GRAFT_CHECK(fs::is_directory(root), kNotFound, "{}: image folder not found", root);
  std::vector<std::string> folders;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && !hidden(entry.path()))
      folders.push_back(entry.path().filename().string());
  std::sort(folders.begin(), folders.end());

  Dataset d;
  d.class_names = class_names_file.empty() ? folders : read_class_names(class_names_file);
  std::map<std::string, int64_t> class_of;
  for (size_t i = 0; i < d.class_names.size(); ++i) class_of[d.class_names[i]] = int64_t(i);
  for (const std::string& folder : folders)
    GRAFT_CHECK(class_of.count(folder), kCorruption, "{}: folder '{}' is not a class named in {}",
                root, folder, class_names_file);
  d.num_classes = static_cast<int64_t>(d.class_names.size());

  for (const std::string& name : d.class_names) {
    fs::path dir = fs::path(root) / name;
    if (!fs::is_directory(dir)) continue;
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir))
      if (!entry.is_directory() && !hidden(entry.path()) && is_image_name(entry.path()))
        files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    for (std::string& f : files) d.samples.push_back({f, {class_of[name]}, f});
  }
  GRAFT_CHECK(!d.samples.empty(), kInvalidArgument,
              "{}: no images (.jpg, .jpeg, .png) in any class folder", root);
  return d;
}

std::pair<Dataset, Dataset> split_stratified(const Dataset& d, double val_fraction, uint64_t seed) {
  GRAFT_CHECK(val_fraction >= 0 && val_fraction < 1, kInvalidArgument,
              "validation fraction must be in [0, 1), got {}", val_fraction);
  std::map<int64_t, std::vector<size_t>> by_class;  // first label -> sample indices
  for (size_t i = 0; i < d.samples.size(); ++i)
    by_class[d.samples[i].labels.empty() ? -1 : d.samples[i].labels[0]].push_back(i);

  std::vector<bool> to_val(d.samples.size(), false);
  for (auto& [label, indices] : by_class) {
    data::Rng rng(data::mix_seeds({seed, static_cast<uint64_t>(label)}));
    data::shuffle(indices, rng);
    size_t n = indices.size();
    size_t n_val = std::min(n - 1, static_cast<size_t>(std::llround(double(n) * val_fraction)));
    for (size_t k = 0; k < n_val; ++k) to_val[indices[k]] = true;
  }
  Dataset train, val;
  for (Dataset* part : {&train, &val}) {
    part->class_names = d.class_names;
    part->num_classes = d.num_classes;
  }
  for (size_t i = 0; i < d.samples.size(); ++i)
    (to_val[i] ? val : train).samples.push_back(d.samples[i]);
  return {std::move(train), std::move(val)};
}

}  // namespace graft
