#include "graft/npy.h"

#include "graft/file.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

namespace graft {

namespace {

const char* descr_of(DType t) {
  switch (t) {
    case DType::kF32: return "<f4";
    case DType::kF64: return "<f8";
    case DType::kF16: return "<f2";
    case DType::kI64: return "<i8";
    case DType::kI32: return "<i4";
    case DType::kI8: return "|i1";
    case DType::kU8: return "|u1";
    case DType::kBool: return "|b1";
  }
  return "?";
}

DType dtype_of_descr(const std::string& d) {
  for (DType t : {DType::kF32, DType::kF64, DType::kF16, DType::kI64, DType::kI32, DType::kI8,
                  DType::kU8, DType::kBool}) {
    std::string mine = descr_of(t);
    if (d == mine || (d.size() == 3 && d.substr(1) == mine.substr(1) &&
                      (d[0] == '=' || d[0] == '|' || d[0] == '<')))
      return t;
  }
  fail(ErrorKind::kUnsupported, "array dtype '{}' is not supported (little-endian numeric only)", d);
}

}  // namespace

Tensor load_npy(const std::string& path) {
  return with_context(path, [&] {
    std::ifstream f(path, std::ios::binary);
    GRAFT_CHECK(f.good(), kNotFound, "cannot open file");
    char magic[8];
    f.read(magic, 8);
    GRAFT_CHECK(f.gcount() == 8 && std::string(magic, 6) == "\x93NUMPY", kCorruption,
                "not a .npy file");
    int major = static_cast<uint8_t>(magic[6]);
    uint32_t header_len = 0;
    if (major == 1) {
      uint8_t b[2];
      f.read(reinterpret_cast<char*>(b), 2);
      header_len = b[0] | (b[1] << 8);
    } else {
      uint8_t b[4];
      f.read(reinterpret_cast<char*>(b), 4);
      header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
    }
    GRAFT_CHECK(f.good() && header_len < (1u << 20), kCorruption, "bad .npy header length");
    std::string header(header_len, '\0');
    f.read(header.data(), header_len);
    GRAFT_CHECK(f.gcount() == header_len, kCorruption, "truncated .npy header");

    std::smatch m;
    GRAFT_CHECK(std::regex_search(header, m, std::regex("'descr':\\s*'([^']*)'")), kCorruption,
                "header has no 'descr'");
    DType dtype = dtype_of_descr(m[1]);
    GRAFT_CHECK(!std::regex_search(header, std::regex("'fortran_order':\\s*True")), kUnsupported,
                "Fortran-order arrays are not supported; save with C order");
    GRAFT_CHECK(std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)")), kCorruption,
                "header has no 'shape'");
    Shape shape;
    std::string dims = m[1];
    std::regex num("\\d+");
    for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it)
      shape.push_back(std::stoll(it->str()));

    int64_t numel = shape_numel(shape);
    auto data_start = f.tellg();
    f.seekg(0, std::ios::end);
    auto available = static_cast<uint64_t>(f.tellg() - data_start);
    uint64_t needed = static_cast<uint64_t>(numel) * dtype_size(dtype);
    GRAFT_CHECK(available >= needed, kCorruption, "holds {} data bytes, shape {} needs {}",
                available, shape_str(shape), needed);
    f.seekg(data_start);
    Tensor t(dtype, shape);
    f.read(static_cast<char*>(t.raw()), static_cast<std::streamsize>(needed));
    GRAFT_CHECK(f.good() || needed == 0, kIO, "read failed");
    return t;
  });
}

void save_npy(const std::string& path, const Tensor& t) {
  std::string shape;  // "2, 3"; a 1-d shape is "5," as in Python
  for (int i = 0; i < t.rank(); ++i) shape += (i ? ", " : "") + std::to_string(t.dim(i));
  if (t.rank() == 1) shape += ",";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}",
                                   descr_of(t.dtype()), shape);
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);  // magic, format version 1.0
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(static_cast<const char*>(t.raw()), t.nbytes());
  write_file_atomically(path, bytes);
}

}  // namespace graft
