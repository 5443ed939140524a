#include "ops/kernel_util.h"

namespace graft::ops {

int normalize_axis(int64_t axis, int rank) {
  int64_t a = axis < 0 ? axis + rank : axis;
  GRAFT_CHECK(a >= 0 && a < std::max(rank, 1), kInvalidArgument, "axis {} is out of range for rank {}",
              axis, rank);
  return static_cast<int>(a);
}

std::vector<int64_t> strides_of(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    GRAFT_CHECK(da == db || da == 1 || db == 1, kInvalidArgument,
                "shapes {} and {} cannot be broadcast together", shape_str(a), shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  size_t offset = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[offset + i]) return false;
  return true;
}

std::vector<int64_t> broadcast_index_map(const Shape& in_shape, const Shape& out_shape) {
  size_t rank = out_shape.size();
  GRAFT_ASSERT(in_shape.size() <= rank);
  std::vector<int64_t> in_strides(rank, 0);
  std::vector<int64_t> s = strides_of(in_shape);
  size_t offset = rank - in_shape.size();
  for (size_t i = 0; i < in_shape.size(); ++i)
    in_strides[offset + i] = in_shape[i] == 1 ? 0 : s[i];
  int64_t n = shape_numel(out_shape);
  std::vector<int64_t> map(n);
  std::vector<int64_t> idx(rank, 0);
  int64_t flat = 0;
  for (int64_t k = 0; k < n; ++k) {
    map[k] = flat;
    for (int d = static_cast<int>(rank) - 1; d >= 0; --d) {  // odometer increment
      ++idx[d];
      flat += in_strides[d];
      if (idx[d] < out_shape[d]) break;
      flat -= in_strides[d] * idx[d];
      idx[d] = 0;
    }
  }
  return map;
}

}  // namespace graft::ops
