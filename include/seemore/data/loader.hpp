// seemore/data/loader.hpp — mini-batches for any data held as tensors whose
// first dimension indexes the samples (images [N, C, H, W], features [N, D],
// labels [N]): the indices of each epoch's batches, shuffled or in order, and
// the rows of those indices.
//
//   data::BatchSampler batches(N, 32, /*shuffle=*/true, /*seed=*/7);
//   for (int64_t epoch = 0; epoch < 10; ++epoch)
//     for (const auto& idx : batches.epoch(epoch)) {
//       Tensor<float> xb = data::take_rows(x, idx);
//       Tensor<int32_t> yb = data::take_rows(y, idx);
//       ...
//     }
//
// An epoch's order depends only on (seed, epoch): a resumed run sees the
// batches it would have seen, and every rank of a data-parallel run the same.
#pragma once

#include <seemore/random.hpp>
#include <seemore/tensor.hpp>

#include <numeric>
#include <vector>

namespace seemore::data {

class BatchSampler {
 public:
  // n samples in batches of batch_size; the last, smaller batch is dropped when drop_last.
  BatchSampler(int64_t n, int64_t batch_size, bool shuffle = true, uint64_t seed = 0, bool drop_last = false)
      : n_(n), batch_(batch_size), shuffle_(shuffle), drop_last_(drop_last), seed_(seed) {
    SEEMORE_CHECK(n >= 0 && batch_size > 0, "BatchSampler: ", n, " samples in batches of ", batch_size,
                  ": the count must be >= 0 and the batch > 0");
    SEEMORE_CHECK(!drop_last || n >= batch_size, "BatchSampler: drop_last with ", n,
                  " samples and batches of ", batch_size, " leaves no batch");
  }
  int64_t batches_per_epoch() const { return drop_last_ ? n_ / batch_ : (n_ + batch_ - 1) / batch_; }

  // The batches of epoch `e` (from 0): a permutation of 0..n−1 (Fisher–Yates
  // on a Philox stream keyed by the seed, at offset e·n), cut in order.
  std::vector<std::vector<int64_t>> epoch(int64_t e) const {
    SEEMORE_CHECK(e >= 0, "BatchSampler: epoch must be >= 0, got ", e);
    std::vector<int64_t> order(static_cast<size_t>(n_));
    std::iota(order.begin(), order.end(), int64_t(0));
    if (shuffle_) {
      Generator g(seed_);
      g.set_state(seed_, uint64_t(e) * uint64_t(n_));
      for (int64_t i = n_ - 1; i > 0; --i) std::swap(order[size_t(i)], order[size_t(g.randint(uint64_t(i + 1)))]);
    }
    std::vector<std::vector<int64_t>> out;
    for (int64_t b = 0; b < batches_per_epoch(); ++b) {
      const int64_t lo = b * batch_, hi = std::min(n_, lo + batch_);
      out.emplace_back(order.begin() + lo, order.begin() + hi);
    }
    return out;
  }

 private:
  int64_t n_, batch_;
  bool shuffle_, drop_last_;
  uint64_t seed_;
};

// Rows `idx` of x (along its first dimension), copied into a new tensor on
// x's device. Data, not a graph: no gradient flows back to x.
template <class T>
Tensor<T> take_rows(const Tensor<T>& x, const std::vector<int64_t>& idx) {
  SEEMORE_CHECK(x.ndim() >= 1, "take_rows: a tensor of at least one dimension, got ", to_string(x.shape()));
  const int64_t n = x.size(0), row = n ? x.numel() / n : 0;
  const auto v = x.to_vector();
  std::vector<T> out;
  out.reserve(idx.size() * size_t(row));
  for (int64_t i : idx) {
    SEEMORE_CHECK(i >= 0 && i < n, "take_rows: index ", i, " outside the ", n, " rows of ", to_string(x.shape()));
    out.insert(out.end(), v.begin() + i * row, v.begin() + (i + 1) * row);
  }
  Shape s = x.shape();
  s[0] = int64_t(idx.size());
  return Tensor<T>::from_vector(s, out, x.device());
}

}  // namespace seemore::data
