// seemore/random.hpp — the seeded, counter-based random number generator.
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"):
// the stream is a pure function of (seed, counter), so it is the same run to run
// and machine to machine, and a GPU kernel can compute element i's number
// without touching the others. A Generator hands out disjoint counter ranges;
// every fill below defines element i's value from (seed, base + i) only.
#pragma once

#include <seemore/config.hpp>

#include <array>
#include <cmath>
#include <cstdint>

namespace seemore {

struct Philox {
  using Block = std::array<uint32_t, 4>;
  // One 128-bit block of output for a 64-bit key and a 128-bit counter.
  static SEEMORE_HOST_DEVICE inline Block block(uint64_t key, uint64_t counter_lo, uint64_t counter_hi = 0) {
    uint32_t c0 = uint32_t(counter_lo), c1 = uint32_t(counter_lo >> 32);
    uint32_t c2 = uint32_t(counter_hi), c3 = uint32_t(counter_hi >> 32);
    uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
    for (int r = 0; r < 10; ++r) {
      uint64_t p0 = uint64_t(0xD2511F53u) * c0;
      uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
      uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
      uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
      c0 = hi1 ^ c1 ^ k0;
      c1 = lo1;
      c2 = hi0 ^ c3 ^ k1;
      c3 = lo0;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    return {c0, c1, c2, c3};
  }
  // Uniform in the open interval (0, 1): never 0, so log() is safe.
  static SEEMORE_HOST_DEVICE inline double to_open01(uint32_t x) { return (double(x) + 0.5) * (1.0 / 4294967296.0); }

  // Element i of a fill whose counter range starts at `base`.
  static SEEMORE_HOST_DEVICE inline double uniform(uint64_t key, uint64_t base, uint64_t i) {
    return to_open01(block(key, base + i / 4)[i % 4]);
  }
  static SEEMORE_HOST_DEVICE inline double normal(uint64_t key, uint64_t base, uint64_t i) {
    Block b = block(key, base + i / 2);
    const int l = int(i % 2) * 2;
    double u1 = to_open01(b[l]), u2 = to_open01(b[l + 1]);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
  }
};

// Which rows of a global batch this process computes. Fills over a batch
// (Generator::reserve_rows) give every row of the *global* batch its own
// counter range, and a process that holds rows [begin, begin + count) of
// `total` draws only theirs: a row's random numbers (dropout masks) are the
// same however the batch is split over micro-batches or processes.
struct BatchSlice {
  int64_t begin = 0, count = 0, total = 0;  // count == 0: the whole batch is here
};

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  // How many counter blocks have been handed out; with seed() it is the whole state.
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves enough blocks for n uniform (4 per block) or normal (2 per block)
  // draws and returns the first block's counter.
  uint64_t reserve(uint64_t n_blocks) {
    uint64_t b = offset_;
    offset_ += n_blocks;
    return b;
  }
  // Reserves the counters of a fill over `rows` rows of `row_blocks` blocks
  // each and returns the first (local) row's; row r starts at that + r·row_blocks.
  // Under a batch slice `rows` must be the slice's count: the ranges of the
  // whole global batch are reserved and this slice's are returned.
  uint64_t reserve_rows(int64_t rows, uint64_t row_blocks) {
    if (slice_.count == 0) return reserve(uint64_t(rows) * row_blocks);
    SEEMORE_CHECK(rows == slice_.count, "random fill over ", rows, " rows while the generator computes rows [",
                  slice_.begin, ", ", slice_.begin + slice_.count, ") of a batch of ", slice_.total,
                  ": every batched fill must be over the slice's rows");
    const uint64_t b = offset_ + uint64_t(slice_.begin) * row_blocks;
    offset_ += uint64_t(slice_.total) * row_blocks;
    return b;
  }
  void set_batch_slice(const BatchSlice& s) {
    SEEMORE_CHECK(s.count == 0 || (s.begin >= 0 && s.count > 0 && s.begin + s.count <= s.total), "batch slice [",
                  s.begin, ", ", s.begin + s.count, ") of ", s.total, " is not inside the batch");
    slice_ = s;
  }
  const BatchSlice& batch_slice() const { return slice_; }
  // A captured CUDA graph replays the same kernels every step, so their
  // counters cannot be baked in: while one is captured the generator hands
  // out counters relative to the step's start, and the CUDA kernels add the
  // start, which the step writes to this device address before each replay
  // (train/step_graph.hpp). Null (the default): counters are absolute.
  void set_device_offset(const uint64_t* p) { device_offset_ = p; }
  const uint64_t* device_offset() const { return device_offset_; }

  double uniform() { return Philox::uniform(seed_, reserve(1), 0); }
  double normal() { return Philox::normal(seed_, reserve(1), 0); }
  // Uniform integer in [0, n) (n > 0), without modulo bias worth caring about at our sizes.
  uint64_t randint(uint64_t n) {
    auto b = Philox::block(seed_, reserve(1));
    uint64_t x = (uint64_t(b[0]) << 32) | b[1];
    return x % n;
  }

 private:
  uint64_t seed_ = 0;
  uint64_t offset_ = 0;
  BatchSlice slice_;
  const uint64_t* device_offset_ = nullptr;
};

// Sets a generator's batch slice for a scope (a micro-batch's forward).
class BatchSliceGuard {
 public:
  BatchSliceGuard(Generator& g, const BatchSlice& s) : g_(g), prev_(g.batch_slice()) { g.set_batch_slice(s); }
  ~BatchSliceGuard() { g_.set_batch_slice(prev_); }
  BatchSliceGuard(const BatchSliceGuard&) = delete;
  BatchSliceGuard& operator=(const BatchSliceGuard&) = delete;

 private:
  Generator& g_;
  BatchSlice prev_;
};

}  // namespace seemore
