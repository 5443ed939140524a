// Replays every input under tests/data/fuzz_regressions/TARGET/ (saved from
// fuzz/ runs after the bug was fixed) through the parser its fuzz target
// drives: each must load or be refused with graft::Error — never a crash,
// a sanitizer report or another exception.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "graft/dataset.h"
#include "graft/error.h"
#include "graft/image.h"
#include "graft/onnx.h"
#include "graft/session.h"
#include "graft/tensor.h"
#include "graft/tfjs.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> inputs(const std::string& target) {
  std::vector<fs::path> out;
  fs::path dir = fs::path(GRAFT_TEST_DATA) / "fuzz_regressions" / target;
  if (fs::exists(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) out.push_back(e.path());
  return out;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void write_bytes(const fs::path& p, std::string_view bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Runs `parse` on each saved input; graft::Error is a clean refusal. The
// tensor size limit is the fuzzers' (fuzz/fuzz_util.h), restored after.
void replay(const std::string& target, const std::function<void(const std::string&)>& parse) {
  struct Limit {
    size_t saved = graft::max_tensor_bytes();
    Limit() { graft::set_max_tensor_bytes(size_t{256} << 20); }
    ~Limit() { graft::set_max_tensor_bytes(saved); }
  } limit;
  for (const fs::path& p : inputs(target)) {
    SCOPED_TRACE(p.string());
    std::string bytes = read_bytes(p);
    try {
      parse(bytes);
    } catch (const graft::Error&) {
    }
  }
}

// A scratch folder for parsers that read files, removed at the end.
struct Scratch {
  fs::path dir = graft::test::temp_path("fuzz_regressions");
  Scratch() { fs::create_directories(dir); }
  ~Scratch() { fs::remove_all(dir); }
};

}  // namespace

TEST(FuzzRegressions, Onnx) {
  Scratch s;
  replay("onnx", [&](const std::string& b) { graft::parse_onnx(b, s.dir.string(), "fuzz.onnx"); });
}

TEST(FuzzRegressions, OnnxSession) {
  Scratch s;
  replay("onnx_session", [&](const std::string& b) {
    graft::Graph g = graft::parse_onnx(b, s.dir.string(), "fuzz.onnx");
    graft::Session session(g);
    graft::infer_shapes(g, graft::resolve_input_shapes(g, {}, 1));
  });
}

TEST(FuzzRegressions, Tfjs) {
  Scratch s;
  replay("tfjs", [&](const std::string& b) {
    size_t nul = b.find('\0');
    write_bytes(s.dir / "model.json", std::string_view(b).substr(0, nul));
    write_bytes(s.dir / "w.bin",
                nul == std::string::npos ? std::string_view() : std::string_view(b).substr(nul + 1));
    graft::load_tfjs((s.dir / "model.json").string());
  });
}

TEST(FuzzRegressions, ListFile) {
  Scratch s;
  replay("list_file", [&](const std::string& b) {
    write_bytes(s.dir / "list.txt", b);
    try {
      graft::read_list_file(s.dir.string(), (s.dir / "list.txt").string());
    } catch (const graft::Error&) {
    }
    graft::read_list_file(s.dir.string(), (s.dir / "list.txt").string(), 4);
  });
}

TEST(FuzzRegressions, Image) {
  replay("image", [&](const std::string& b) {
    graft::DecodeOptions o;
    o.max_pixels = 4'000'000;
    try {
      graft::decode_image(b, "fuzz", o);
    } catch (const graft::Error&) {
    }
    o.min_width = o.min_height = 32;
    graft::decode_image(b, "fuzz", o);
  });
}

// The list-file inputs above, with the message: a label so large that its
// class count would overflow or allocate a name per class is refused.
TEST(FuzzRegressions, ListFileHugeLabel) {
  Scratch s;
  for (const char* text : {"a.jpg 9223372036854775807\n", "a.jpg 0,1000000000000\n"}) {
    write_bytes(s.dir / "list.txt", text);
    graft::test::expect_error(
        [&] { graft::read_list_file(s.dir.string(), (s.dir / "list.txt").string()); },
        graft::ErrorKind::kCorruption, "is too large");
  }
}

// image/riff_short.bin: a file of just "RIFF" made the format sniffing read
// past its end (std::out_of_range escaped instead of graft::Error).
TEST(FuzzRegressions, ImageShortRiff) {
  graft::test::expect_error([] { graft::decode_image("RIFF", "short.webp"); },
                            graft::ErrorKind::kCorruption, "short.webp: not a JPEG or PNG image");
}

// tfjs/huge_float_kernel_size.bin: a kernel_size of 8.9e83 was cast to int64
// before its range was checked (undefined behaviour; UBSan aborts).
TEST(FuzzRegressions, TfjsHugeFloatInteger) {
  Scratch s;
  std::string b =
      read_bytes(fs::path(GRAFT_TEST_DATA) / "fuzz_regressions/tfjs/huge_float_kernel_size.bin");
  size_t nul = b.find('\0');
  write_bytes(s.dir / "model.json", std::string_view(b).substr(0, nul));
  write_bytes(s.dir / "w.bin", std::string_view(b).substr(nul + 1));
  graft::test::expect_error([&] { graft::load_tfjs((s.dir / "model.json").string()); },
                            graft::ErrorKind::kCorruption, "must be an integer");
}
