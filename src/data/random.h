// Small, fast, reproducible random numbers for shuffling and augmentation.
// The same seed gives the same stream on every platform and thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <utility>

namespace graft::data {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// One seed from several numbers, order-sensitive.
inline uint64_t mix_seeds(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x243f6a8885a308d3ULL;
  for (uint64_t p : parts) h = splitmix64(h ^ splitmix64(p));
  return h;
}

// A 64-bit hash of bytes (FNV-1a, then mixed): stable across runs, not cryptographic.
inline uint64_t hash_bytes(std::string_view bytes, uint64_t seed = 0) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ULL;
  return splitmix64(h);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() { return splitmix64(state_++); }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n), n > 0.
  uint64_t below(uint64_t n) {
    return std::min(n - 1, static_cast<uint64_t>(uniform() * static_cast<double>(n)));
  }

 private:
  uint64_t state_;
};

// Fisher-Yates with Rng: the same permutation for the same seed everywhere
// (std::shuffle's algorithm is implementation-defined).
template <typename T>
void shuffle(T& items, Rng& rng) {
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng.below(i)]);
}

}  // namespace graft::data
