// seemore/ops/dropout.hpp — inverted dropout with a counter-based mask.
//
// A tensor of rank ≥ 2 is a batch of rows along its first dimension (rank 0
// or 1: one row). Each row draws from its own range of Philox blocks,
// reserved with Generator::reserve_rows and starting on a block boundary:
// element k of row r is dropped when lane k%4 of Philox(seed, base +
// r·⌈n_row/4⌉ + ⌊k/4⌋), as a uniform in (0,1), is < p. So a given seed and
// call order reproduce the same masks on every backend, and a row's mask is
// the same whether the batch is computed whole or in slices (micro-batches,
// data-parallel ranks). When n_row is a multiple of 4 the ranges touch and
// the whole tensor is one run of counters. Identity when not training or
// p == 0 (the input itself is returned, no copy). The CPU form keeps the
// mask as bits for the backward, a CUDA tensor as a float mask.
#pragma once

#include <seemore/ops/elementwise.hpp>

#include <memory>
#include <vector>

namespace seemore {

namespace detail {
// The rows of a batched fill: [rows, per-row elements, blocks per row].
struct DropoutRows {
  int64_t rows, per;
  uint64_t row_blocks;
  // Whether the rows' counter ranges touch, so that the tensor is one run.
  bool one_run() const { return rows <= 1 || per % 4 == 0; }
};
inline DropoutRows dropout_rows(const Shape& s) {
  const int64_t n = numel_of(s), rows = s.size() >= 2 ? s[0] : 1;
  const int64_t per = rows ? n / rows : 0;
  return {rows, per, uint64_t(per + 3) / 4};
}
// mask (and, when x is given, y = x·mask) for the rows of `r`, row i from
// block base + i·row_blocks (+ *base_dev on a CUDA device, when given).
template <class T>
void dropout_fill(Device dev, const DropoutRows& r, const T* x, T* y, T* mask, double p, uint64_t seed,
                  uint64_t base, const uint64_t* base_dev = nullptr) {
  if (dev.is_cpu()) base_dev = nullptr;
  if (r.one_run()) {
    if (x) SEEMORE_DISPATCH(dev, dropout_forward, r.rows * r.per, x, y, mask, p, seed, base, base_dev);
    else SEEMORE_DISPATCH(dev, dropout_mask, r.rows * r.per, mask, p, seed, base, base_dev);
    return;
  }
  for (int64_t i = 0; i < r.rows; ++i) {
    const int64_t o = i * r.per;
    const uint64_t b = base + uint64_t(i) * r.row_blocks;
    if (x) SEEMORE_DISPATCH(dev, dropout_forward, r.per, x + o, y + o, mask + o, p, seed, b, base_dev);
    else SEEMORE_DISPATCH(dev, dropout_mask, r.per, mask + o, p, seed, b, base_dev);
  }
}

// The CPU form keeps bits (backend/cpu/dropout.hpp): the rows of `r` as one
// run when their counters touch (as dropout_fill), else one run per row.
struct CpuKeep {
  std::shared_ptr<std::vector<uint64_t>> words;
  backend::cpu::KeepBits bits;
};
template <class T>
CpuKeep cpu_keep_fill(const DropoutRows& r, const T* x, T* y, double p, uint64_t seed, uint64_t base) {
  const bool one = r.one_run();
  backend::cpu::KeepBits k{nullptr, one ? 1 : r.rows, one ? r.rows * r.per : r.per, p};
  const int64_t per_run = k.words_per_run();
  auto words = std::make_shared<std::vector<uint64_t>>(size_t(k.runs * per_run));
  for (int64_t i = 0; i < k.runs; ++i)
    backend::cpu::dropout_forward_bits(k.len, x ? x + i * k.len : nullptr, x ? y + i * k.len : nullptr,
                                       words->data() + i * per_run, p, seed, base + uint64_t(i) * r.row_blocks);
  k.words = words->data();
  return {std::move(words), k};
}
// Causal attention's keep bits over its [B, H, T, T] weights (the rows of
// `r`), laid out as cpu_keep_fill's but drawn only where a query sees its key
// (backend/cpu/dropout.hpp, causal_keep_bits): the other bits are zero.
inline CpuKeep cpu_causal_keep_fill(const DropoutRows& r, int64_t H, int64_t T, double p, uint64_t seed,
                                    uint64_t base) {
  const bool one = r.one_run();
  backend::cpu::KeepBits k{nullptr, one ? 1 : r.rows, one ? r.rows * r.per : r.per, p};
  auto words = std::make_shared<std::vector<uint64_t>>(size_t(k.runs * k.words_per_run()));
  backend::cpu::causal_keep_bits(k, words->data(), r.rows, H, T, seed, base, r.row_blocks);
  k.words = words->data();
  return {std::move(words), k};
}
}  // namespace detail

template <class T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training, Generator& gen) {
  SEEMORE_CHECK(p >= 0 && p < 1, "dropout: probability ", p, " outside [0, 1)");
  if (!training || p == 0) return x;
  const auto r = detail::dropout_rows(x.shape());
  const uint64_t base = gen.reserve_rows(r.rows, r.row_blocks);
  auto out = Tensor<T>::empty(x.shape(), x.device());
  if (x.device().is_cpu()) {
    const auto keep = detail::cpu_keep_fill(r, x.data(), out.data(), p, gen.seed(), base);
    autograd::record(out, "dropout", {x}, [keep](const Tensor<T>& g) {
      auto dx = Tensor<T>::empty(g.shape(), g.device());
      backend::cpu::dropout_backward_bits(keep.bits, g.data(), dx.data());
      return std::vector<Tensor<T>>{dx};
    });
    return out;
  }
  auto mask = Tensor<T>::empty(x.shape(), x.device());
  detail::dropout_fill(x.device(), r, x.data(), out.data(), mask.data(), p, gen.seed(), base, gen.device_offset());
  autograd::record(out, "dropout", {x}, [mask](const Tensor<T>& g) { return std::vector<Tensor<T>>{mul(g, mask)}; });
  return out;
}

}  // namespace seemore
