#include <catch2/catch.hpp>

#include "../support/gradcheck.hpp"

#include <limits>

using namespace seemore;
using namespace seemore::testing;

namespace {
// Attention from plain ops, per the op's contract: the oracle for the fused op.
TensorD reference_attention(const TensorD& qkv, const AttentionOptions& o, Generator* gen) {
  const int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3, H = o.n_head, D = C / H;
  auto heads = [&](int64_t part) { return permute(reshape(slice(qkv, 2, part * C, (part + 1) * C), {B, T, H, D}), {0, 2, 1, 3}); };
  auto q = heads(0);
  if (o.queries > 0) q = slice(q, 2, 0, o.queries);  // only the first positions ask
  auto s = matmul(q, heads(1), false, true) * o.scale;
  if (o.causal) {
    auto mask = TensorD::zeros({T, T});
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = i + 1; j < T; ++j) mask.data()[i * T + j] = -std::numeric_limits<double>::infinity();
    s = s + mask;
  }
  auto p = softmax(s);
  if (o.training && o.dropout > 0) p = dropout(p, o.dropout, true, *gen);
  return reshape(permute(matmul(p, heads(2)), {0, 2, 1, 3}), {B, o.queries > 0 ? o.queries : T, C});
}
}  // namespace

TEST_CASE("attention: fused op equals the per-head reference; gradients", "[ops][attention][grad]") {
  struct Case { int64_t B, T, H, D; };
  for (auto c : {Case{1, 1, 1, 4}, Case{2, 7, 3, 4}, Case{1, 65, 2, 3}}) {
    for (bool causal : {false, true})
      for (double p : {0.0, 0.2}) {
        DYNAMIC_SECTION("B" << c.B << " T" << c.T << " H" << c.H << " D" << c.D << " causal " << causal << " p " << p) {
          AttentionOptions o{c.H, 1.0 / std::sqrt(double(c.H * c.D)), causal, p, true};
          auto qkv = randn({c.B, c.T, 3 * c.H * c.D}, 1);
          auto fused = [&](const std::vector<TensorD>& v) { Generator g(3); return attention(v[0], o, &g); };
          auto ref = [&](const std::vector<TensorD>& v) { Generator g(3); return reference_attention(v[0], o, &g); };
          CHECK(allclose(fused({qkv}), ref({qkv}), 1e-12, 1e-12));
          std::vector<TensorD> a{qkv.clone()}, b{qkv.clone()};
          a[0].requires_grad_();
          b[0].requires_grad_();
          auto R = randn({c.B, c.T, c.H * c.D}, 2);
          sum(fused(a) * R).backward();
          sum(ref(b) * R).backward();
          CHECK(allclose(a[0].grad(), b[0].grad(), 1e-10, 1e-12));
          if (c.T <= 7) CHECK_GRADS(gradcheck(fused, {qkv}), 1e-5);
        }
      }
  }
  // Eval mode ignores dropout and needs no generator.
  auto qkv = randn({1, 3, 6}, 4);
  AttentionOptions eval{1, 0.5, true, 0.5, false};
  CHECK(allclose(attention(qkv, eval), reference_attention(qkv, eval, nullptr), 1e-12, 1e-12));
  CHECK_THROWS_WITH(attention(randn({1, 3, 7}, 1), AttentionOptions{2, 1.0}), Catch::Contains("3·H·D"));
}

TEST_CASE("attention: the first n positions as the only queries; qkv_projection", "[ops][attention][grad]") {
  struct Case { int64_t B, T, H, D, n; };
  for (auto c : {Case{2, 7, 3, 4, 1}, Case{1, 5, 2, 2, 3}, Case{2, 37, 2, 8, 1}}) {
    for (double p : {0.0, 0.2}) {
      DYNAMIC_SECTION("B" << c.B << " T" << c.T << " H" << c.H << " D" << c.D << " n" << c.n << " p " << p) {
        const int64_t C = c.H * c.D;
        AttentionOptions o{c.H, 1.0 / std::sqrt(double(C)), false, p, true, c.n};
        auto qkv = randn({c.B, c.T, 3 * C}, 1);
        auto fused = [&](const std::vector<TensorD>& v) { Generator g(3); return attention(v[0], o, &g); };
        auto ref = [&](const std::vector<TensorD>& v) { Generator g(3); return reference_attention(v[0], o, &g); };
        REQUIRE(fused({qkv}).shape() == Shape{c.B, c.n, C});
        CHECK(allclose(fused({qkv}), ref({qkv}), 1e-12, 1e-12));
        std::vector<TensorD> a{qkv.clone()}, b{qkv.clone()};
        a[0].requires_grad_();
        b[0].requires_grad_();
        auto R = randn({c.B, c.n, C}, 2);
        sum(fused(a) * R).backward();
        sum(ref(b) * R).backward();
        CHECK(allclose(a[0].grad(), b[0].grad(), 1e-10, 1e-12));
        if (c.T <= 7) CHECK_GRADS(gradcheck(fused, {qkv}), 1e-5);

        // The projection that fills only those queries, then the attention,
        // against the whole projection's attention sliced to them.
        auto x = randn({c.B, c.T, C}, 4), w = randn({3 * C, C}, 5) * 0.3;
        auto y = qkv_projection(x, w, c.n), whole = linear(x, w);
        CHECK(allclose(slice(y, 2, C, 3 * C), slice(whole, 2, C, 3 * C), 1e-12, 1e-12));
        CHECK(allclose(slice(slice(y, 1, 0, c.n), 2, 0, C), slice(slice(whole, 1, 0, c.n), 2, 0, C), 1e-12, 1e-12));
        auto unasked = slice(slice(y, 1, c.n, c.T), 2, 0, C);
        CHECK(max_abs_diff(unasked, TensorD::zeros(unasked.shape())) == 0.0);
        if (c.T <= 7) CHECK_GRADS(gradcheck([&](auto& v) { return qkv_projection(v[0], v[1], c.n); }, {x, w}), 1e-5);
        AttentionOptions all = o;
        all.queries = 0;
        std::vector<TensorD> pa{x.clone(), w.clone()}, pb{x.clone(), w.clone()};
        for (auto* v : {&pa, &pb})
          for (auto& t : *v) t.requires_grad_();
        Generator g1(3), g2(3);
        auto part = attention(qkv_projection(pa[0], pa[1], c.n), o, &g1);
        auto full = slice(attention(linear(pb[0], pb[1]), all, &g2), 1, 0, c.n);
        if (p == 0) CHECK(allclose(part, full, 1e-12, 1e-12));  // with dropout the masks are other draws
        if (p == 0) {
          sum(part * R).backward();
          sum(full * R).backward();
          CHECK(allclose(pa[0].grad(), pb[0].grad(), 1e-10, 1e-12));
          CHECK(allclose(pa[1].grad(), pb[1].grad(), 1e-10, 1e-12));
        }
      }
    }
  }
  // n = T is the whole attention; n past T, or fewer queries under the causal mask, are refused.
  auto qkv = randn({1, 4, 6}, 6);
  CHECK(allclose(attention(qkv, AttentionOptions{1, 0.5, false, 0.0, false, 4}),
                 attention(qkv, AttentionOptions{1, 0.5}), 0, 0));
  CHECK_THROWS_WITH(attention(qkv, AttentionOptions{1, 0.5, false, 0.0, false, 5}), Catch::Contains("queries 5"));
  CHECK_THROWS_WITH(attention(qkv, AttentionOptions{1, 0.5, true, 0.0, false, 2}), Catch::Contains("causal"));
  CHECK_THROWS_WITH(qkv_projection(randn({1, 4, 2}, 1), randn({6, 2}, 1), 0), Catch::Contains("queries 0"));
  CHECK_THROWS_WITH(qkv_projection(randn({1, 4, 2}, 1), randn({4, 2}, 1), 1), Catch::Contains("[3C, C]"));
}

// The kernels with Tq < T queries against the whole attention's first Tq
// rows (a dropout mask's bits placed where each layout keeps them; dO zero
// past Tq): the same products over the same keys, so the same bits.
TEST_CASE("attention kernels: the first Tq queries give the whole attention's bits for them", "[ops][attention]") {
  namespace cpu = backend::cpu;
  for (int64_t T : {1, 7, 37, 65})
    for (int64_t Tq : {int64_t(1), int64_t(3), T})
      for (int64_t D : {16, 64})
        for (bool masked : {false, true}) {
          if (Tq > T) continue;
          DYNAMIC_SECTION("T " << T << " Tq " << Tq << " D " << D << " mask " << masked) {
            const int64_t B = 2, H = 2, C = H * D, C3 = 3 * C;
            auto qkv = random_float_double(size_t(B * T * C3), uint64_t(T * 13 + D), 1.0).f;
            auto dq = random_float_double(size_t(B * Tq * C), 17, 1.0).f;
            std::vector<float> dfull(size_t(B * T * C), 0.0f);  // dO of the queries after Tq: zero
            for (int64_t b = 0; b < B; ++b)
              std::copy(dq.begin() + b * Tq * C, dq.begin() + (b + 1) * Tq * C, dfull.begin() + b * T * C);
            std::vector<uint64_t> wf(size_t((B * H * T * T + 63) / 64)), wp(size_t((B * H * Tq * T + 63) / 64));
            const cpu::KeepBits kf{wf.data(), 1, B * H * T * T, 0.25}, kp{wp.data(), 1, B * H * Tq * T, 0.25};
            if (masked) {
              cpu::dropout_forward_bits<float>(kf.len, nullptr, nullptr, wf.data(), kf.p, 5, 0);
              for (int64_t bh = 0; bh < B * H; ++bh)
                for (int64_t e = 0; e < Tq * T; ++e) {
                  const int64_t f = bh * T * T + e, q = bh * Tq * T + e;
                  if (wf[size_t(f / 64)] >> (f % 64) & 1) wp[size_t(q / 64)] |= uint64_t(1) << (q % 64);
                }
            }
            const float scale = 1.0f / std::sqrt(float(D));
            std::vector<float> pf(size_t(B * H * T * T)), of(size_t(B * T * C)), gf(qkv.size());
            std::vector<float> pp(size_t(B * H * Tq * T)), op(size_t(B * Tq * C)), gp(qkv.size(), 7.0f);
            cpu::attention_forward<float>(B, T, H, D, qkv.data(), scale, false, masked ? &kf : nullptr, pf.data(),
                                          of.data());
            cpu::attention_forward<float>(B, T, H, D, qkv.data(), scale, false, masked ? &kp : nullptr, pp.data(),
                                          op.data(), Tq);
            cpu::attention_backward<float>(B, T, H, D, qkv.data(), scale, false, masked ? &kf : nullptr, pf.data(),
                                           dfull.data(), gf.data());
            cpu::attention_backward<float>(B, T, H, D, qkv.data(), scale, false, masked ? &kp : nullptr, pp.data(),
                                           dq.data(), gp.data(), Tq);
            bool same_p = true, same_o = true;
            for (int64_t bh = 0; bh < B * H; ++bh)
              for (int64_t e = 0; e < Tq * T; ++e) same_p &= pp[size_t(bh * Tq * T + e)] == pf[size_t(bh * T * T + e)];
            for (int64_t b = 0; b < B; ++b)
              for (int64_t e = 0; e < Tq * C; ++e) same_o &= op[size_t(b * Tq * C + e)] == of[size_t(b * T * C + e)];
            CHECK(same_p);
            CHECK(same_o);
            CHECK(gp == gf);  // keys, values, the queries' rows, and zeros (not the 7s) for the rest
          }
        }
}

TEST_CASE("attention: the GEMM accounting counts its products, causal ones at the half they need", "[ops][attention]") {
  auto& st = backend::cpu::gemm_stats();
  st.reset();
  st.enabled = true;
  const int64_t B = 2, T = 5, H = 3, D = 4;
  for (bool causal : {false, true}) {
    auto qkv = randn({B, T, 3 * H * D}, 5);
    qkv.requires_grad_();
    const int64_t before = st.attention_flops.load();
    auto out = attention(qkv, AttentionOptions{H, 0.5, causal});
    const int64_t scores = causal ? T * (T + 1) / 2 : T * T;
    CHECK(st.attention_flops.load() - before == 2 * B * H * scores * 2 * D);  // Q·Kᵀ and P·V
    sum(out).backward();
    CHECK(st.attention_flops.load() - before == 6 * B * H * scores * 2 * D);  // and dV, dP, dQ, dK
  }
  st.enabled = false;
  st.reset();
  (void)attention(randn({B, T, 3 * H * D}, 6), AttentionOptions{H, 0.5});
  CHECK(st.attention_flops.load() == 0);  // off unless enabled
}

TEST_CASE("patch_conv2d: equals a direct convolution; gradients", "[ops][conv][grad]") {
  struct Case { int64_t B, Cin, H, W, Cout, k; };
  for (auto c : {Case{1, 1, 4, 4, 1, 2}, Case{2, 3, 7, 9, 5, 3}, Case{1, 2, 6, 4, 7, 2}}) {
    auto x = randn({c.B, c.Cin, c.H, c.W}, 1), w = randn({c.Cout, c.Cin, c.k, c.k}, 2), b = randn({c.Cout}, 3);
    auto y = patch_conv2d(x, w, b);
    const int64_t Ho = c.H / c.k, Wo = c.W / c.k;
    REQUIRE(y.shape() == Shape{c.B, Ho * Wo, c.Cout});
    double worst = 0;
    for (int64_t bb = 0; bb < c.B; ++bb)
      for (int64_t o = 0; o < c.Cout; ++o)
        for (int64_t ph = 0; ph < Ho; ++ph)
          for (int64_t pw = 0; pw < Wo; ++pw) {
            double s = b.at({o});
            for (int64_t ci = 0; ci < c.Cin; ++ci)
              for (int64_t i = 0; i < c.k; ++i)
                for (int64_t j = 0; j < c.k; ++j) s += x.at({bb, ci, ph * c.k + i, pw * c.k + j}) * w.at({o, ci, i, j});
            worst = std::max(worst, std::abs(s - y.at({bb, ph * Wo + pw, o})));
          }
    CHECK(worst < 1e-12);
    CHECK_GRADS(gradcheck([](auto& v) { return patch_conv2d(v[0], v[1], v[2]); }, {x, w, b}), 1e-5);
  }
  CHECK_THROWS_WITH(patch_conv2d(randn({1, 3, 8, 8}, 1), randn({4, 2, 2, 2}, 1)), Catch::Contains("patch_conv2d"));
}

// Causal heads are computed in blocks of queries, each product over only the
// keys the block sees (backend/cpu/attention.hpp). The left-out terms are
// exact zeros, so the result must be the bits of the whole T×T products,
// written out here with the same primitives.
TEST_CASE("attention kernels: causal blocks give the whole square's bits", "[ops][attention]") {
  namespace cpu = backend::cpu;
  for (int64_t T : {7, 33, 64, 65, 100})
    for (int64_t D : {16, 64})
      for (bool masked : {false, true}) {
        DYNAMIC_SECTION("T " << T << " D " << D << " mask " << masked) {
          const int64_t B = 2, H = 2, C = H * D, C3 = 3 * C;
          auto qkv = random_float_double(size_t(B * T * C3), uint64_t(T * 7 + D), 1.0).f;
          auto dout = random_float_double(size_t(B * T * C), 11, 1.0).f;
          std::vector<uint64_t> words(size_t((B * H * T * T + 63) / 64));
          const cpu::KeepBits keep{words.data(), 1, B * H * T * T, 0.25};
          if (masked) cpu::dropout_forward_bits<float>(keep.len, nullptr, nullptr, words.data(), keep.p, 3, 0);
          const float scale = 1.0f / std::sqrt(float(D));
          std::vector<float> probs(size_t(B * H * T * T)), out(size_t(B * T * C)), dqkv(qkv.size());
          cpu::attention_forward<float>(B, T, H, D, qkv.data(), scale, true, masked ? &keep : nullptr, probs.data(),
                                        out.data());
          cpu::attention_backward<float>(B, T, H, D, qkv.data(), scale, true, masked ? &keep : nullptr,
                                         probs.data(), dout.data(), dqkv.data());
          std::vector<float> want_p(probs.size()), want_out(out.size()), want_d(dqkv.size());
          std::vector<float> m(size_t(T * T), 1.0f), pm(m.size()), dp(m.size());
          for (int64_t b = 0; b < B; ++b)
            for (int64_t h = 0; h < H; ++h) {
              const float* q = qkv.data() + b * T * C3 + h * D;
              float* P = want_p.data() + (b * H + h) * T * T;
              if (masked) cpu::keep_scale<float>(keep, 0, (b * H + h) * T * T, T * T, nullptr, m.data());
              cpu::gemm<float>(false, true, T, T, D, scale, q, C3, q + C, C3, 0.0f, P, T);
              cpu::softmax_prefix_rows(T, T, P, P, [](int64_t i) { return i + 1; });
              for (int64_t i = 0; i < T * T; ++i) pm[size_t(i)] = P[i] * m[size_t(i)];
              cpu::gemm<float>(false, false, T, D, T, 1.0f, pm.data(), T, q + 2 * C, C3, 0.0f,
                               want_out.data() + b * T * C + h * D, C);
              const float* dO = dout.data() + b * T * C + h * D;
              float* dq = want_d.data() + b * T * C3 + h * D;
              cpu::gemm<float>(true, false, T, D, T, 1.0f, pm.data(), T, dO, C, 0.0f, dq + 2 * C, C3);
              cpu::gemm<float>(false, true, T, T, D, 1.0f, dO, C, q + 2 * C, C3, 0.0f, dp.data(), T);
              cpu::softmax_grad_prefix_rows(T, T, P, masked ? m.data() : nullptr, dp.data(),
                                            [](int64_t i) { return i + 1; });
              cpu::gemm<float>(false, false, T, D, T, scale, dp.data(), T, q + C, C3, 0.0f, dq, C3);
              cpu::gemm<float>(true, false, T, D, T, scale, dp.data(), T, q, C3, 0.0f, dq + C, C3);
            }
          CHECK(probs == want_p);
          CHECK(out == want_out);
          CHECK(dqkv == want_d);
        }
      }
}

// The float kernel (vectorised softmax and row sums) against the double one
// (plain loops), with the same GEMMs: forward, then backward from the same
// double probabilities, with and without a dropout mask.
TEST_CASE("attention kernels: float path equals the double loops", "[ops][attention]") {
  namespace cpu = backend::cpu;
  for (int64_t T : {1, 7, 37, 65})
    for (int64_t D : {16, 64})
      for (bool causal : {false, true})
        for (bool masked : {false, true}) {
          DYNAMIC_SECTION("T " << T << " D " << D << " causal " << causal << " mask " << masked) {
            const int64_t B = 2, H = 2, C = H * D;
            auto qkv = random_float_double(size_t(B * T * 3 * C), uint64_t(T * 100 + D), 1.0);
            auto dout = random_float_double(size_t(B * T * C), 5, 1.0);
            std::vector<uint64_t> words(size_t((B * H * T * T + 63) / 64));
            const cpu::KeepBits keep{words.data(), 1, B * H * T * T, 0.25};
            if (masked)
              cpu::dropout_forward_bits<float>(keep.len, nullptr, nullptr, words.data(), keep.p, 9, 0);
            std::vector<float> pf(size_t(B * H * T * T)), of(size_t(B * T * C)), gf(qkv.f.size());
            std::vector<double> pd(pf.size()), od(of.size()), gd(qkv.d.size());
            const double scale = 1.0 / std::sqrt(double(D));
            cpu::attention_forward<float>(B, T, H, D, qkv.f.data(), float(scale), causal,
                                          masked ? &keep : nullptr, pf.data(), of.data());
            cpu::attention_forward<double>(B, T, H, D, qkv.d.data(), scale, causal, masked ? &keep : nullptr,
                                           pd.data(), od.data());
            CHECK(rel_error(pf, pd) < 2e-6);
            CHECK(rel_error(of, od) < 2e-6);
            std::vector<float> pd_f(pd.begin(), pd.end());
            std::vector<double> pd_d(pd_f.begin(), pd_f.end());
            cpu::attention_backward<float>(B, T, H, D, qkv.f.data(), float(scale), causal, masked ? &keep : nullptr,
                                           pd_f.data(), dout.f.data(), gf.data());
            cpu::attention_backward<double>(B, T, H, D, qkv.d.data(), scale, causal, masked ? &keep : nullptr,
                                            pd_d.data(), dout.d.data(), gd.data());
            CHECK(rel_error(gf, gd) < 1e-5);
          }
        }
}
