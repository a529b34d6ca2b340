// Every x86 form of the CPU fast paths (backend/cpu/isa.hpp) this processor
// runs, each against its reference: GEMM against a double product (the forms
// block differently, so to a tolerance, and each form's rows independent of
// the split), the AVX-512 small-product path against the packed kernels,
// Philox and Adam bit for bit. Each case prints the forms it ran. Also the
// column sums split over threads, against the serial loop.
#include <catch2/catch.hpp>

#include <seemore/vlm.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

using namespace seemore;
namespace cpu = seemore::backend::cpu;

namespace {
// scalar, then each wider form the processor supports.
std::vector<cpu::Isa> forms_here() {
  std::vector<cpu::Isa> f{cpu::Isa::scalar};
  if (int(cpu::supported_isa()) >= int(cpu::Isa::avx2)) f.push_back(cpu::Isa::avx2);
  if (cpu::supported_isa() == cpu::Isa::avx512) f.push_back(cpu::Isa::avx512);
  return f;
}
void say_forms(const char* what) {
  std::string names;
  for (auto f : forms_here()) names += std::string(names.empty() ? "" : ", ") + cpu::isa_name(f);
  std::printf("%s: ran the forms %s (this processor's best: %s)\n", what, names.c_str(),
              cpu::isa_name(cpu::supported_isa()));
}
// Puts float GEMMs back on the built-in kernels whatever SEEMORE_BLAS says.
struct NoBlas {
  NoBlas() { cpu::use_blas(""); }
  ~NoBlas() { cpu::use_blas(""); }
};
}  // namespace

TEST_CASE("cpu forms: the selection follows the processor and the cap", "[backend][isa]") {
  const cpu::Isa best = cpu::supported_isa();
  for (auto f : {cpu::Isa::scalar, cpu::Isa::avx2, cpu::Isa::avx512}) {
    cpu::IsaCap cap(f);
    CHECK(int(cpu::active_isa()) == std::min(int(f), int(best)));
  }
#if SEEMORE_X86_DISPATCH && defined(__AVX2__) && defined(__FMA__)
  CHECK(int(best) >= int(cpu::Isa::avx2));  // a build for AVX2 runs on a processor that has it
#endif
#if SEEMORE_X86_DISPATCH && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__)
  CHECK(best == cpu::Isa::avx512);
#endif
  NoBlas no_blas;
  cpu::IsaCap cap(cpu::Isa::scalar);
  CHECK(cpu::gemm_library() == "Eigen");
}

TEST_CASE("cpu forms: every GEMM form against a double product, rows independent of the split",
          "[backend][isa][matmul]") {
  NoBlas no_blas;
  say_forms("gemm");
  Generator gen(3);
  // Ragged edges in every direction, K across several KC blocks, beta 0 over
  // NaN (must not be read), and strides wider than the rows.
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {7, 9, 13}, {13, 33, 300}, {37, 70, 600},
                         {300, 70, 256}, {20, 501, 129}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.0f, 0.5f}) {
          const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
          auto A = Tensor<float>::randn({(ta ? K : M) * lda}, gen).to_vector();
          auto B = Tensor<float>::randn({(tb ? N : K) * ldb}, gen).to_vector();
          auto C0 = Tensor<float>::randn({M * ldc}, gen).to_vector();
          if (beta == 0) for (auto& c : C0) c = std::nanf("");
          std::vector<double> ref(size_t(M * N));
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) {
              double s = 0;
              for (int64_t k = 0; k < K; ++k)
                s += double(ta ? A[size_t(k * lda + i)] : A[size_t(i * lda + k)]) *
                     double(tb ? B[size_t(j * ldb + k)] : B[size_t(k * ldb + j)]);
              ref[size_t(i * N + j)] = 1.5 * s + (beta == 0 ? 0.0 : double(beta) * C0[size_t(i * ldc + j)]);
            }
          for (auto form : forms_here()) {
            cpu::IsaCap cap(form);
            INFO(cpu::isa_name(form) << ": M " << M << " N " << N << " K " << K << " ta " << ta << " tb " << tb
                                     << " beta " << beta);
            auto C = C0;
            cpu::gemm<float>(ta, tb, M, N, K, 1.5f, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
            double worst = 0;
            int64_t padding_touched = 0;
            for (int64_t i = 0; i < M; ++i) {
              for (int64_t j = 0; j < N; ++j) {
                const double r = ref[size_t(i * N + j)], c = C[size_t(i * ldc + j)];
                worst = std::max(worst, std::isfinite(c) ? std::abs(c - r) / (1 + std::abs(r)) : 1e30);
              }
              for (int64_t j = N; j < ldc; ++j) {
                const float a = C[size_t(i * ldc + j)], b = C0[size_t(i * ldc + j)];
                padding_touched += !(a == b || (std::isnan(a) && std::isnan(b)));
              }
            }
            CHECK(worst < 2e-6 * std::sqrt(double(K)) + 1e-6);
            CHECK(padding_touched == 0);
            // Each row of a packed form's result is the same computed alone:
            // a batch split over ranks or micro-batches gives the same bits.
            if (form != cpu::Isa::scalar && M > 1) {
              const int64_t i = M / 2;
              std::vector<float> c1(static_cast<size_t>(N));
              for (int64_t j = 0; j < N; ++j) c1[size_t(j)] = C0[size_t(i * ldc + j)];
              cpu::gemm<float>(ta, tb, 1, N, K, 1.5f, ta ? A.data() + i : A.data() + i * lda, lda, B.data(), ldb, beta,
                               c1.data(), N);
              int64_t differ = 0;
              for (int64_t j = 0; j < N; ++j) differ += c1[size_t(j)] != C[size_t(i * ldc + j)];
              CHECK(differ == 0);
            }
          }
        }
}

TEST_CASE("cpu forms: a short-K product streamed to a large C gives the bits of ordinary stores",
          "[backend][isa][matmul]") {
  NoBlas no_blas;
  // Ragged in both directions for both tiles; large enough per thread to be
  // streamed on 1 or 2 threads; K = 33 is over the limit (not streamed).
  const int64_t M = 600, N = 1000, ldc = 1008;
  const int threads = cpu::max_threads();
  Generator gen(8);
  for (int64_t K : {16, 32, 33})
    for (auto [ta, tb] : {std::pair<bool, bool>{true, false}, {false, false}, {false, true}}) {
      auto A = Tensor<float>::randn({M * K}, gen).to_vector(), B = Tensor<float>::randn({K * N}, gen).to_vector();
      // One C 64-byte aligned (streamed), one a float past it (stored as before).
      std::vector<float> buf(size_t(M * ldc + 32), std::nanf(""));
      const size_t lead = (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64 / sizeof(float);
      float* aligned = buf.data() + lead;
      std::vector<float> other(size_t(M * ldc + 1), std::nanf(""));
      CHECK(cpu::detail_packed::stream_c(K, M, N / 2, 0.0f, aligned, ldc) == (K <= 32));
      CHECK_FALSE(cpu::detail_packed::stream_c(K, M, N, 0.0f, other.data() + 1, ldc));
      for (auto form : forms_here()) {
        if (form == cpu::Isa::scalar) continue;
        cpu::IsaCap cap(form);
        for (int t : {1, 2}) {
          cpu::set_num_threads(t);
          std::fill(buf.begin(), buf.end(), std::nanf(""));
          cpu::gemm<float>(ta, tb, M, N, K, 1.5f, A.data(), ta ? M : K, B.data(), tb ? K : N, 0.0f, aligned, ldc);
          cpu::gemm<float>(ta, tb, M, N, K, 1.5f, A.data(), ta ? M : K, B.data(), tb ? K : N, 0.0f,
                           other.data() + 1, ldc);
          int64_t differ = 0, padding_touched = 0;
          for (int64_t i = 0; i < M; ++i) {
            for (int64_t j = 0; j < N; ++j) differ += aligned[i * ldc + j] != other[size_t(1 + i * ldc + j)];
            for (int64_t j = N; j < ldc; ++j) padding_touched += !std::isnan(aligned[i * ldc + j]);
          }
          const int64_t i = M - 1, j = N - 1;  // the last element against a double sum
          double want = 0;
          for (int64_t k = 0; k < K; ++k)
            want += double(ta ? A[size_t(k * M + i)] : A[size_t(i * K + k)]) *
                    double(tb ? B[size_t(j * K + k)] : B[size_t(k * N + j)]);
          INFO(cpu::isa_name(form) << ", K " << K << ", ta " << ta << " tb " << tb << ", " << t << " threads");
          CHECK(differ == 0);
          CHECK(padding_touched == 0);
          CHECK(std::abs(aligned[i * ldc + j] - 1.5 * want) < 1e-4 * (1 + std::abs(want)));
        }
      }
    }
  cpu::set_num_threads(threads);
}

TEST_CASE("cpu forms: a packed GEMM gives the same bits on 1 and 2 threads and in either form",
          "[backend][isa][matmul]") {
  NoBlas no_blas;
  // Big enough to be split over the threads; K spans several KC blocks, so
  // the forms agree only if they block k alike.
  const int64_t M = 300, N = 260, K = 700;
  Generator gen(5);
  auto A = Tensor<float>::randn({M * K}, gen).to_vector(), B = Tensor<float>::randn({K * N}, gen).to_vector();
  const int threads = cpu::max_threads();
  std::vector<std::vector<float>> by_form;
  for (auto form : forms_here()) {
    if (form == cpu::Isa::scalar) continue;  // Eigen's blocking follows the size
    cpu::IsaCap cap(form);
    std::vector<float> one(size_t(M * N)), two(one.size());
    cpu::set_num_threads(1);
    cpu::gemm<float>(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, one.data(), N);
    cpu::set_num_threads(2);
    cpu::gemm<float>(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, two.data(), N);
    INFO(cpu::isa_name(form));
    CHECK(one == two);
    by_form.push_back(one);
  }
  cpu::set_num_threads(threads);
  // A model trained on an AVX2 machine and on an AVX-512 one (or ranks of
  // both) computes the same products.
  for (size_t f = 1; f < by_form.size(); ++f) CHECK(by_form[f] == by_form[0]);
}

TEST_CASE("cpu: bias and LayerNorm weight gradients give the serial loop's bits on any thread count",
          "[backend][layernorm]") {
  // The column sums run one block of columns per thread (parallel.hpp); each
  // column must still be summed row by row in order, as the serial loop here.
  const int threads = cpu::max_threads();
  for (auto [N, C] : {std::pair<int64_t, int64_t>{592, 512}, {1024, 66}, {4096, 17}, {300, 1000}, {3, 40}}) {
    Generator gen(uint64_t(N * 7 + C));
    const auto dy = Tensor<float>::randn({N * C}, gen).to_vector(), x = Tensor<float>::randn({N * C}, gen).to_vector();
    const auto w = Tensor<float>::randn({C}, gen).to_vector();
    std::vector<float> mean(static_cast<size_t>(N)), rstd(static_cast<size_t>(N));
    for (int64_t r = 0; r < N; ++r) {
      mean[size_t(r)] = 0.01f * float(r % 7);
      rstd[size_t(r)] = 1.0f + 0.1f * float(r % 5);
    }
    std::vector<float> want_db(size_t(C), 0.0f), want_dw(size_t(C), 0.0f), want_lb(size_t(C), 0.0f);
    for (int64_t r = 0; r < N; ++r)
      for (int64_t c = 0; c < C; ++c) {
        const size_t i = size_t(r * C + c);
        want_db[size_t(c)] += dy[i];
        want_dw[size_t(c)] += dy[i] * (x[i] - mean[size_t(r)]) * rstd[size_t(r)];
      }
    want_lb = want_db;
    for (int t : {1, 2, 3}) {
      cpu::set_num_threads(t);
      std::vector<float> db(size_t(C), std::nanf("")), dw(size_t(C), 0.0f), lb(size_t(C), 0.0f), dx(size_t(N * C));
      cpu::bias_grad<float>(N, C, dy.data(), db.data());
      cpu::layernorm_backward<float>(N, C, dy.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.data(),
                                     dw.data(), lb.data());
      INFO(N << "x" << C << " on " << t << " threads");
      CHECK(db == want_db);
      CHECK(dw == want_dw);
      CHECK(lb == want_lb);
    }
  }
  cpu::set_num_threads(threads);
}

TEST_CASE("cpu forms: the small-product path gives the packed path's bits", "[backend][isa][matmul]") {
  // Attention's per-head products take the unpacked path (gemm_kernels.hpp);
  // a product must not change its bits with its size, so each is checked
  // against the packed kernels, its oracle, on ragged tiles and panels.
  Generator gen(11);
  int64_t ran = 0;
  std::string forms;
  for (auto form : forms_here()) {
    if (!cpu::detail_packed::small_product(form, 1, 1, 1, false)) continue;  // scalar: Eigen
    forms += std::string(forms.empty() ? "" : ", ") + cpu::isa_name(form);
    for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {1, 37, 64}, {3, 5, 7}, {4, 16, 16},
                           {5, 17, 3}, {9, 33, 40}, {37, 37, 64}, {37, 64, 37}, {64, 64, 16}, {64, 16, 64},
                           {13, 65, 256}, {16, 100, 130}, {16, 70, 600}, {5, 300, 257}, {1, 40, 1000},
                           {7, 50, 700}, {12, 33, 513}, {2, 17, 300}})
      for (bool ta : {false, true})
        for (bool tb : {false, true})
          for (float beta : {0.0f, -0.75f}) {
            if (!cpu::detail_packed::small_product(form, M, N, K, tb)) continue;  // not a small product in this form
            const int64_t lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 3, ldc = N + 4;
            auto A = Tensor<float>::randn({(ta ? K : M) * lda}, gen).to_vector();
            auto B = Tensor<float>::randn({(tb ? N : K) * ldb}, gen).to_vector();
            auto C0 = Tensor<float>::randn({M * ldc}, gen).to_vector();
            if (beta == 0) for (auto& c : C0) c = std::nanf("");  // must not be read
            auto small = C0, packed = C0;
            REQUIRE(cpu::detail_packed::small_gemm(form, ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, beta,
                                                   small.data(), ldc));
            REQUIRE(cpu::detail_packed::packed_gemm(form, ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, beta,
                                                    packed.data(), ldc));
            int64_t differ = 0;
            for (size_t i = 0; i < small.size(); ++i)
              differ += !(small[i] == packed[i] || (std::isnan(small[i]) && std::isnan(packed[i])));
            INFO(cpu::isa_name(form) << ": M " << M << " N " << N << " K " << K << " ta " << ta << " tb " << tb
                                     << " beta " << beta);
            CHECK(differ == 0);
            ++ran;
          }
  }
  std::printf("small-product path: %lld products checked against the packed kernels (%s)\n",
              static_cast<long long>(ran), ran ? forms.c_str() : "no AVX2 here: nothing to check");
  CHECK(!cpu::detail_packed::small_product(cpu::Isa::avx512, 64, 64, 65, false));  // more FMAs than the limit
  CHECK(!cpu::detail_packed::small_product(cpu::Isa::avx512, 17, 10, 300, false));  // more than one KC block
  CHECK(cpu::detail_packed::small_product(cpu::Isa::avx512, 16, 10, 300, true));    // few rows, either transpose
  CHECK(cpu::detail_packed::small_product(cpu::Isa::avx512, 16, 512, 2048, false));
  CHECK(cpu::detail_packed::small_product(cpu::Isa::avx2, 4, 4, 4, false));
  CHECK(cpu::detail_packed::small_product(cpu::Isa::avx2, 16, 512, 2048, true));
  CHECK(!cpu::detail_packed::small_product(cpu::Isa::avx2, 17, 512, 2048, false));
  CHECK(!cpu::detail_packed::small_product(cpu::Isa::scalar, 4, 4, 4, false));
  float c = 0, one = 1;  // and small_gemm leaves the rest to the packed path
  CHECK(!cpu::detail_packed::small_gemm(cpu::Isa::avx512, false, true, 17, 10, 300, 1.0f, &one, 300, &one, 300, 0.0f,
                                        &c, 10));
}

TEST_CASE("cpu forms: Philox keep bits and dropout, bit-identical in every form", "[backend][isa][dropout]") {
  say_forms("philox/dropout");
  for (auto form : forms_here()) {
    int64_t wrong = 0;
    for (uint64_t counter : {uint64_t(0), uint64_t(0xFFFFFFFFull - 5), uint64_t(0xFFFFFFFFFFFFFFF0ull), uint64_t(99)})
      for (uint64_t t : {uint64_t(0), uint64_t(1), uint64_t(0x7FFFFFFF), uint64_t(0x80000000), uint64_t(0x80000001),
                         uint64_t(0xFFFFFFFF), uint64_t(0x100000000ull), uint64_t(123456789)})
        for (uint64_t key : {uint64_t(0), uint64_t(0x1234567890ABCDEFull)})
          wrong += cpu::philox_keep_bits64(key, counter, t, form) !=
                   (t > 0xFFFFFFFFull ? 0 : cpu::philox_keep_bits64_reference(key, counter, t));
    // Sixteen counters of any order: the skipping fill's form.
    std::mt19937_64 pick(5);
    for (int rep = 0; rep < 40; ++rep) {
      uint64_t counters[16];
      for (auto& c : counters) c = rep % 2 ? pick() : 0xFFFFFFF0ull + pick() % 32;
      const uint64_t t = rep == 0 ? 0 : rep == 1 ? 0xFFFFFFFFull : pick() >> 32, key = pick();
      wrong += cpu::philox_keep_bits64_at(key, counters, t, form) !=
               cpu::philox_keep_bits64_at_reference(key, counters, t);
    }
    // The fused forward on ragged lengths: mask and output element by element.
    cpu::IsaCap cap(form);
    for (int64_t n : {1, 7, 8, 9, 63, 64, 65, 1000}) {
      std::vector<float> x(static_cast<size_t>(n)), y(x.size()), mask(x.size());
      for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(i) - 20.5f;
      cpu::dropout_forward<float>(n, x.data(), y.data(), mask.data(), 0.3, 42, 7);
      for (int64_t i = 0; i < n; ++i) {
        const float m = Philox::uniform(42, 7, uint64_t(i)) >= 0.3 ? float(1.0 / 0.7) : 0.0f;
        wrong += mask[size_t(i)] != m || y[size_t(i)] != x[size_t(i)] * m;
      }
    }
    INFO(cpu::isa_name(form));
    CHECK(wrong == 0);
  }
}

// The keep bits (what the training step keeps for the backward) against the
// float mask of the same counters: the forward's output and bits, the 64 bits
// from any element on (heads of attention start mid-word), the expansion and
// the backward, in one run and in one run per row.
TEST_CASE("cpu forms: dropout keep bits give the float mask's values in every form", "[backend][isa][dropout]") {
  say_forms("dropout keep bits");
  for (auto form : forms_here()) {
    cpu::IsaCap cap(form);
    int64_t wrong = 0;
    for (int64_t len : {1, 7, 63, 64, 65, 130, 1000})
      for (int64_t runs : {1, 3}) {
        const double p = 0.3;
        const uint64_t seed = 42, base = 7, row_blocks = uint64_t(len + 3) / 4;
        const int64_t n = runs * len, per = (len + 63) / 64;
        std::vector<float> x(static_cast<size_t>(n)), y(x.size()), want_y(x.size()), mask(x.size());
        std::vector<uint64_t> words(static_cast<size_t>(runs * per));
        for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(i % 97) - 20.5f;
        for (int64_t r = 0; r < runs; ++r) {
          const uint64_t b = base + uint64_t(r) * row_blocks;
          cpu::dropout_forward<float>(len, x.data() + r * len, want_y.data() + r * len, mask.data() + r * len, p,
                                      seed, b);
          cpu::dropout_forward_bits<float>(len, x.data() + r * len, y.data() + r * len, words.data() + r * per, p,
                                           seed, b);
        }
        const cpu::KeepBits keep{words.data(), runs, len, p};
        for (int64_t i = 0; i < n; ++i) wrong += y[size_t(i)] != want_y[size_t(i)];
        for (int64_t r = 0; r < runs; ++r)
          for (int64_t e = 0; e < len; ++e) {
            const uint64_t bits = keep.from(r, e);
            for (int64_t k = 0; k < std::min<int64_t>(64, len - e); ++k)
              wrong += (((bits >> k) & 1) != 0) != (mask[size_t(r * len + e + k)] != 0);
          }
        // A head-sized slice from mid-run, as attention expands it.
        const int64_t r = runs - 1, e = len / 3, count = len - e;
        std::vector<float> got(static_cast<size_t>(count)), scaled(got.size());
        cpu::keep_scale<float>(keep, r, e, count, nullptr, got.data());
        cpu::keep_scale<float>(keep, r, e, count, x.data() + r * len + e, scaled.data());
        for (int64_t k = 0; k < count; ++k) {
          wrong += got[size_t(k)] != mask[size_t(r * len + e + k)];
          wrong += scaled[size_t(k)] != x[size_t(r * len + e + k)] * mask[size_t(r * len + e + k)];
        }
        std::vector<float> dx(x.size());
        cpu::dropout_backward_bits<float>(keep, x.data(), dx.data());
        for (int64_t i = 0; i < n; ++i) wrong += dx[size_t(i)] != x[size_t(i)] * mask[size_t(i)];
      }
    INFO(cpu::isa_name(form));
    CHECK(wrong == 0);
  }
}

// Causal attention draws only the blocks of keys its queries see: there, its
// bits must be the full fill's, in either layout (one run; a run per batch
// row), on any thread count (batch rows that share a word).
TEST_CASE("cpu forms: causal attention's keep bits are the full fill's where a query sees its key",
          "[backend][isa][dropout][attention]") {
  say_forms("causal keep bits");
  const int threads = cpu::max_threads();
  for (auto form : forms_here()) {
    cpu::IsaCap cap(form);
    int64_t wrong = 0, checked = 0;
    for (auto [B, H, Tn] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {2, 3, 5}, {3, 2, 7}, {4, 1, 9},
                            {4, 2, 64}, {12, 3, 37}, {5, 2, 4}, {2, 1, 65},
                            {40, 3, 18}})  // the last three: over the threads, batch rows sharing words in the last
      for (int t : {1, 3}) {
        cpu::set_num_threads(t);
        const double p = 0.3;
        const uint64_t seed = 42, base = 11, per = uint64_t(H * Tn * Tn), row_blocks = (per + 3) / 4;
        const bool one = B <= 1 || per % 4 == 0;
        const cpu::KeepBits shape{nullptr, one ? 1 : B, one ? B * int64_t(per) : int64_t(per), p};
        const int64_t wpr = shape.words_per_run();
        std::vector<uint64_t> full(size_t(shape.runs * wpr)), causal(full.size());
        for (int64_t r = 0; r < shape.runs; ++r)
          cpu::dropout_forward_bits<float>(shape.len, nullptr, nullptr, full.data() + r * wpr, p, seed,
                                           base + uint64_t(r) * row_blocks);
        cpu::causal_keep_bits(shape, causal.data(), B, H, Tn, seed, base, row_blocks);
        cpu::KeepBits a = shape, c = shape;
        a.words = full.data(), c.words = causal.data();
        for (int64_t b = 0; b < B; ++b)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t i = 0; i < Tn; ++i) {
              const int64_t e = (h * Tn + i) * Tn, r = one ? 0 : b, at = one ? b * int64_t(per) + e : e;
              const uint64_t live = i + 1 >= 64 ? ~uint64_t(0) : (uint64_t(1) << (i + 1)) - 1;
              for (int64_t k = 0; k <= i; k += 64) {
                const uint64_t m = k == 0 ? live : (i + 1 - k >= 64 ? ~uint64_t(0) : (uint64_t(1) << (i + 1 - k)) - 1);
                wrong += ((a.from(r, at + k) ^ c.from(r, at + k)) & m) != 0;
                ++checked;
              }
            }
      }
    cpu::set_num_threads(threads);
    INFO(cpu::isa_name(form) << ": " << checked << " rows checked");
    CHECK(wrong == 0);
    CHECK(checked > 0);
  }
}

TEST_CASE("cpu forms: Adam, bit-identical to the reference loop in every form", "[backend][isa][adam]") {
  say_forms("adam");
  for (auto form : forms_here()) {
    cpu::IsaCap cap(form);
    for (int mode = 0; mode < 3; ++mode)
      for (int64_t n : {1, 7, 9, 15, 17, 40001}) {
        Generator gen(uint64_t(n) + uint64_t(mode));
        auto w0 = Tensor<float>::randn({n}, gen).to_vector();
        std::vector<float> w1 = w0, m0(size_t(n), 0.0f), m1 = m0, v0 = m0, v1 = m0;
        for (int t = 1; t <= 3; ++t) {
          auto g = Tensor<float>::randn({n}, gen).to_vector();
          const double bc1 = 1 - std::pow(0.9, t), bc2 = 1 - std::pow(0.999, t);
          const cpu::AdamArgs<float> a{0.9f, 0.999f, 1e-8f, 0.01f, float(1 - 1e-3 * 0.01),
                                       float(1e-3 / bc1), float(std::sqrt(bc2)), mode == 1, mode == 2};
          cpu::adam_update_reference<float>(0, n, w0.data(), g.data(), m0.data(), v0.data(), a);
          cpu::adam_update<float>(n, w1.data(), g.data(), m1.data(), v1.data(), a);
        }
        int64_t differ = 0;
        for (size_t i = 0; i < size_t(n); ++i) differ += w0[i] != w1[i] || m0[i] != m1[i] || v0[i] != v1[i];
        INFO(cpu::isa_name(form) << ", mode " << mode << ", n = " << n);
        CHECK(differ == 0);
      }
  }
}

TEST_CASE("cpu forms: exp, erf and GELU, bit-identical to the reference in every form and close to libm",
          "[backend][isa][vmath]") {
  say_forms("exp/erf/gelu");
  namespace vm = cpu::vmath;
  // A sweep of [-100, 100], the clamp edges, ±∞, NaN, ±0 and denormals.
  std::vector<float> x;
  for (int i = -20000; i <= 20000; ++i) x.push_back(float(i) * 0.005f);
  for (float v : {-1e30f, -104.0f, -88.0f, -87.33654f, std::nextafter(-87.33654f, 0.0f), -87.34f, 88.3f, 88.37626f,
                  89.0f, 1e30f, -0.0f, 0.0f, 1e-40f, -1e-40f, 1e-8f, 3.0f, 9.5f, -9.5f})
    x.push_back(v);
  x.push_back(std::numeric_limits<float>::infinity());
  x.push_back(-std::numeric_limits<float>::infinity());
  x.push_back(std::nanf(""));
  const int64_t n = int64_t(x.size());
  std::vector<float> dy(x.size());
  for (size_t i = 0; i < dy.size(); ++i) dy[i] = float(int64_t(i % 7) - 3) * 0.25f;

  // The references against double libm.
  double worst_exp = 0, worst_erf = 0;
  for (float v : x) {
    if (std::isnan(v)) {
      CHECK(std::isnan(vm::exp_reference(v)));
      CHECK(std::isnan(vm::erf_reference(v)));
      continue;
    }
    const double e = std::exp(double(v));
    if (v >= -87.0f && v <= 88.0f) worst_exp = std::max(worst_exp, std::abs(vm::exp_reference(v) - e) / e);
    worst_erf = std::max(worst_erf, std::abs(vm::erf_reference(v) - std::erf(double(v))));
  }
  CHECK(worst_exp < 3e-7);  // ≈ 2.5 ulp
  CHECK(worst_erf < 4e-7);  // 3.8e-7 near the clamp at ±4, where erf rounds to ±1
  // Relative to erf on (0, 1): x·P(x²)/Q(x²) keeps the tiny values (a form
  // 1 − t·P(t)·e^(−x²) loses them to cancellation), and ±∞ give ±1.
  double worst_erf_rel = 0;
  for (float v = 1e-30f; v < 1.0f; v *= 1.01f)
    worst_erf_rel = std::max(worst_erf_rel, std::abs(vm::erf_reference(v) - std::erf(double(v))) / std::erf(double(v)));
  CHECK(worst_erf_rel < 3e-7);
  CHECK(vm::erf_reference(std::numeric_limits<float>::infinity()) == 1.0f);
  CHECK(vm::erf_reference(-std::numeric_limits<float>::infinity()) == -1.0f);
  // GELU and its derivative against double libm, within float reach of the
  // true values over [−100, 100].
  double worst_gelu = 0, worst_gelu_grad = 0;
  for (float v : x) {
    if (!std::isfinite(v) || std::abs(v) > 100.0f) continue;
    const double xd = v, cdf = 0.5 * (1.0 + std::erf(xd / std::sqrt(2.0)));
    const double pdf = std::exp(-0.5 * xd * xd) / std::sqrt(2.0 * M_PI);
    worst_gelu = std::max(worst_gelu, std::abs(vm::gelu_reference(v) - xd * cdf) / std::max(1.0, std::abs(xd)));
    worst_gelu_grad = std::max(worst_gelu_grad, std::abs(vm::gelu_grad_reference(v, 1.0f) - (cdf + xd * pdf)));
  }
  INFO("GELU " << worst_gelu << ", its derivative " << worst_gelu_grad);
  CHECK(worst_gelu < 4e-7);
  CHECK(worst_gelu_grad < 4e-7);
  CHECK(vm::exp_reference(-std::numeric_limits<float>::infinity()) == 0.0f);  // masked softmax entries
  CHECK(vm::exp_reference(0.0f) == 1.0f);

  for (auto form : forms_here()) {
    if (form == cpu::Isa::scalar) continue;  // no vmath form: Eigen's functions
    INFO(cpu::isa_name(form));
    std::vector<float> e(x.size()), g(x.size()), dg(x.size());
    float sum = 0;
    REQUIRE(vm::exp_shift_sum(form, n, x.data(), 0.5f, e.data(), sum));
    REQUIRE(vm::gelu_forward(form, n, x.data(), g.data()));
    REQUIRE(vm::gelu_backward(form, n, x.data(), dy.data(), dg.data()));
    // The forward that keeps the derivative: y as gelu_forward, dy·d as gelu_backward.
    std::vector<float> g2(x.size()), d2(x.size());
    REQUIRE(vm::gelu_forward_grad(form, n, x.data(), g2.data(), d2.data()));
    int64_t differ = 0;
    auto same = [](float a, float b) { return a == b || (std::isnan(a) && std::isnan(b)); };
    for (int64_t i = 0; i < n; ++i) {
      differ += !same(e[size_t(i)], vm::exp_reference(x[size_t(i)] - 0.5f));
      differ += !same(g[size_t(i)], vm::gelu_reference(x[size_t(i)]));
      differ += !same(dg[size_t(i)], vm::gelu_grad_reference(x[size_t(i)], dy[size_t(i)]));
      float yr = 0, dr = 0;
      vm::gelu_forward_grad_reference(x[size_t(i)], yr, dr);
      differ += !same(g2[size_t(i)], yr) + !same(d2[size_t(i)], dr);
      differ += !same(yr, vm::gelu_reference(x[size_t(i)]));
      differ += !same(dy[size_t(i)] * dr, vm::gelu_grad_reference(x[size_t(i)], dy[size_t(i)]));
    }
    CHECK(differ == 0);
    CHECK(same(sum, vm::exp_shift_sum_reference(n, x.data(), 0.5f, nullptr)));
    // Sums without the NaN and +∞, over ragged lengths: the same 16-lane order.
    for (int64_t len : {1, 7, 8, 9, 15, 16, 17, 33, 1000}) {
      float s1 = 0;
      REQUIRE(vm::exp_shift_sum(form, len, x.data() + 100, 2.0f, nullptr, s1));
      CHECK(s1 == vm::exp_shift_sum_reference(len, x.data() + 100, 2.0f, nullptr));
    }
  }
}

// Attention's softmax rows: the first m of n entries live (a causal row), the
// rest written 0, forward and gradient, in place or not, with and without a
// dropout mask; every form bit for bit against the reference loops, and the
// reference against a double softmax.
TEST_CASE("cpu forms: masked softmax rows and their gradient, bit-identical to the reference in every form",
          "[backend][isa][vmath][softmax]") {
  say_forms("softmax rows");
  namespace vm = cpu::vmath;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int64_t n : {1, 5, 8, 16, 17, 37, 64, 65, 100})
    for (int64_t m : {int64_t(0), int64_t(1), n / 2, n - 1, n}) {
      if (m < 0 || m > n) continue;
      const size_t len = static_cast<size_t>(n);
      std::vector<float> x(len), d(len), mask(len);
      for (auto& v : x) v = normal(rng);
      for (auto& v : d) v = normal(rng);
      for (size_t j = 0; j < mask.size(); ++j) mask[j] = j % 3 == 1 ? 0.0f : 1.25f;
      if (n > 2 && m > 1) x[1] = -std::numeric_limits<float>::infinity();  // a masked score among the live ones
      std::vector<float> want(x.size());
      vm::softmax_prefix_reference(n, m, x.data(), want.data());
      // The reference is a softmax: against double over the live entries.
      double mx = -INFINITY, sum = 0, worst = 0;
      for (int64_t j = 0; j < m; ++j) mx = std::max(mx, double(x[size_t(j)]));
      for (int64_t j = 0; j < m; ++j) sum += std::exp(double(x[size_t(j)]) - mx);
      for (int64_t j = 0; j < n; ++j) {
        const double e = j < m ? std::exp(double(x[size_t(j)]) - mx) / sum : 0.0;
        worst = std::max(worst, std::abs(double(want[size_t(j)]) - e));
      }
      INFO("n " << n << " m " << m);
      CHECK(worst < 1e-6);
      std::vector<float> want_g[2];
      for (int masked = 0; masked < 2; ++masked) {
        want_g[masked] = d;
        vm::softmax_grad_prefix_reference(n, m, want.data(), masked ? mask.data() : nullptr, want_g[masked].data());
      }
      {  // No vmath form: the row functions fall back to the plain loops, which sum in another order.
        cpu::IsaCap cap(cpu::Isa::scalar);
        std::vector<float> y(x.size(), 99.0f), g = d;
        cpu::softmax_prefix_rows(1, n, x.data(), y.data(), [m](int64_t) { return m; });
        cpu::softmax_grad_prefix_rows(1, n, want.data(), mask.data(), g.data(), [m](int64_t) { return m; });
        double wy = 0, wg = 0;
        for (size_t j = 0; j < y.size(); ++j) {
          wy = std::max(wy, double(std::abs(y[j] - want[j])));
          wg = std::max(wg, double(std::abs(g[j] - want_g[1][j])) / (1.0 + std::abs(want_g[1][j])));
        }
        INFO("plain loops");
        CHECK(wy < 1e-6);
        CHECK(wg < 1e-5);
        for (int64_t j = m; j < n; ++j) CHECK((y[size_t(j)] == 0.0f && g[size_t(j)] == 0.0f));
      }
      for (auto form : forms_here()) {
        if (form == cpu::Isa::scalar) continue;  // checked above
        INFO(cpu::isa_name(form));
        std::vector<float> y(x.size(), 99.0f), inplace = x;
        REQUIRE(vm::softmax_prefix(form, n, m, x.data(), y.data()));
        REQUIRE(vm::softmax_prefix(form, n, m, inplace.data(), inplace.data()));
        CHECK(y == want);
        CHECK(inplace == want);
        for (int masked = 0; masked < 2; ++masked) {
          std::vector<float> g = d;
          REQUIRE(vm::softmax_grad_prefix(form, n, m, want.data(), masked ? mask.data() : nullptr, g.data()));
          CHECK(g == want_g[masked]);
        }
      }
    }
}
