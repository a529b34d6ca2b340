// The CUDA kernels' logic, run on the CPU through tests/cuda/emulation.hpp and
// compared with the CPU backend (the oracle), in every build: indexing,
// tiling, barriers, shuffles, the online softmax, the deterministic sums and
// the dropout masks are checked here even where no GPU exists. Sizes are small
// (every CUDA thread is a real thread here) but awkward: 1, 7, 37, 65 rows,
// head sizes 16 to 128, ragged tiles. Real-GPU behaviour is tests/cuda/test_cuda.cu.
//
// The seemore headers come first, so that the emulation's macros cannot touch them.
#include <catch2/catch.hpp>
#include <seemore/vlm.hpp>

#include "emulation.hpp"

#include <seemore/kernels/adam.cuh>
#include <seemore/kernels/attention.cuh>
#include <seemore/kernels/cross_entropy.cuh>
#include <seemore/kernels/elementwise.cuh>
#include <seemore/kernels/layernorm.cuh>
#include <seemore/kernels/layout.cuh>
#include <seemore/kernels/softmax.cuh>

#include <cmath>
#include <vector>

namespace k = seemore::kernels;
namespace cpu = seemore::backend::cpu;
using seemore::Generator;

namespace {
template <class T>
std::vector<T> rnd(size_t n, uint64_t seed, double scale = 1.0) {
  Generator g(seed);
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = T(scale * seemore::Philox::normal(g.seed(), 0, i));
  return v;
}
// max |a − b| ≤ tol · max(1, max |b|)
template <class T>
bool near(const std::vector<T>& a, const std::vector<T>& b, double tol) {
  if (a.size() != b.size()) return false;
  double mx = 1, worst = 0;
  for (auto v : b) mx = std::max(mx, std::abs(double(v)));
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(double(a[i]) - double(b[i]));
    if (!(d <= worst)) worst = std::isnan(d) ? 1e300 : d;
  }
  if (worst > tol * mx) UNSCOPED_INFO("worst difference " << worst << " (scale " << mx << ")");
  return worst <= tol * mx;
}
}  // namespace

TEST_CASE("cuda kernels (emulated): elementwise, broadcasting, reductions", "[cuda-emulation]") {
  struct Pair { std::vector<int64_t> a, b; };
  for (auto pr : {Pair{{7, 65}, {7, 65}}, Pair{{37, 1}, {1, 9}}, Pair{{2, 3, 5}, {5}}, Pair{{1}, {5, 7}}}) {
    const auto bc = cpu::broadcast(pr.a, pr.b, "test");
    int64_t na = 1, nb = 1, n = 1;
    for (auto d : pr.a) na *= d;
    for (auto d : pr.b) nb *= d;
    for (auto d : bc.shape) n *= d;
    auto a = rnd<float>(size_t(na), 1), b = rnd<float>(size_t(nb), 2);
    std::vector<float> got(static_cast<size_t>(n)), want(static_cast<size_t>(n));
    k::binary<k::BinOp::Mul>(bc, a.data(), b.data(), got.data());
    cpu::mul(bc, a.data(), b.data(), want.data());
    CHECK(got == want);
    k::binary<k::BinOp::Sub>(bc, a.data(), b.data(), got.data());
    cpu::sub(bc, a.data(), b.data(), want.data());
    CHECK(got == want);
    // sum_to back to each operand's shape (the adjoint of the broadcast)
    std::vector<float> sa(static_cast<size_t>(na)), ra(static_cast<size_t>(na));
    k::launch_sum_to(bc.shape, want.data(), pr.a, sa.data());
    cpu::sum_to(bc.shape, want.data(), pr.a, ra.data());
    CHECK(near(sa, ra, 1e-5));
  }
  SECTION("sum_to: a long full reduction takes the one-block-per-output kernel") {
    auto x = rnd<double>(3 * 2500, 3);
    std::vector<double> got(1), want(1), got3(3), want3(3);
    k::launch_sum_to<double>({3, 2500}, x.data(), {}, got.data());
    cpu::sum_to<double>({3, 2500}, x.data(), {}, want.data());
    CHECK(near(got, want, 1e-12));
    k::launch_sum_to<double>({3, 2500}, x.data(), {3, 1}, got3.data());
    cpu::sum_to<double>({3, 2500}, x.data(), {3, 1}, want3.data());
    CHECK(near(got3, want3, 1e-12));
  }
  SECTION("permute and broadcast_to") {
    auto x = rnd<float>(2 * 3 * 5, 4);
    std::vector<float> got(30), want(30);
    const std::vector<int64_t> shape{2, 3, 5};
    const std::vector<int> perm{2, 0, 1};
    auto st = cpu::contiguous_strides(shape);
    k::strided_copy<float>({5, 2, 3}, {st[2], st[0], st[1]}, x.data(), got.data(), "permute");
    cpu::permute(shape, perm, x.data(), want.data());
    CHECK(got == want);
    std::vector<float> g2(4 * 5), w2(4 * 5);
    k::strided_copy<float>({4, 5}, cpu::broadcast_strides({5}, {4, 5}), x.data(), g2.data(), "broadcast_to");
    cpu::broadcast_to<float>({5}, x.data(), {4, 5}, w2.data());
    CHECK(g2 == w2);
  }
  SECTION("maps: exp, log, sqrt, affine, GELU, ReLU") {
    const int64_t n = 1000;
    auto x = rnd<double>(size_t(n), 5), dy = rnd<double>(size_t(n), 6);
    std::vector<double> pos(x.size());
    for (size_t i = 0; i < x.size(); ++i) pos[i] = x[i] * x[i] + 0.1;
    std::vector<double> got(static_cast<size_t>(n)), want(static_cast<size_t>(n));
    for (auto op : {seemore::backend::Unary::Exp, seemore::backend::Unary::Log, seemore::backend::Unary::Sqrt}) {
      k::unary(n, pos.data(), got.data(), op);
      cpu::unary_map(n, pos.data(), want.data(), op);
      CHECK(near(got, want, 1e-14));
    }
    k::unary(n, x.data(), got.data(), seemore::backend::Unary::ScaleShift, -1.5, 0.25);
    cpu::scale_shift(n, x.data(), -1.5, 0.25, want.data());
    CHECK(got == want);
    for (bool t : {false, true}) {
      k::launch_gelu_forward(n, x.data(), got.data(), t);
      cpu::gelu_forward(n, x.data(), want.data(), t);
      CHECK(near(got, want, 1e-14));
      k::launch_gelu_backward(n, x.data(), dy.data(), got.data(), t);
      cpu::gelu_backward(n, x.data(), dy.data(), want.data(), t);
      CHECK(near(got, want, 1e-14));
    }
    k::launch_relu_backward(n, x.data(), dy.data(), got.data());
    cpu::relu_backward(n, x.data(), dy.data(), want.data());
    CHECK(got == want);
  }
  SECTION("bias add and the deterministic column sums") {
    for (int64_t N : {1, 7, 65, 129}) {
      const int64_t C = 37;
      auto y = rnd<double>(size_t(N * C), 7), b = rnd<double>(size_t(C), 8);
      auto y2 = y;
      k::launch_add_bias(N, C, y.data(), b.data());
      cpu::add_bias(N, C, y2.data(), b.data());
      CHECK(y == y2);
      std::vector<double> got(size_t(C), 1.0), want(static_cast<size_t>(C));
      k::launch_colsum(N, C, y.data(), got.data(), false);
      cpu::bias_grad(N, C, y.data(), want.data());
      CHECK(near(got, want, 1e-13));
      k::launch_colsum(N, C, y.data(), got.data(), true);  // accumulate: twice the sum now
      for (auto& v : want) v *= 2;
      CHECK(near(got, want, 1e-13));
    }
  }
  SECTION("dropout: the same mask as the CPU, bit for bit") {
    for (int64_t n : {1, 7, 65, 4099}) {
      auto x = rnd<float>(size_t(n), 9);
      std::vector<float> y(static_cast<size_t>(n)), m(static_cast<size_t>(n)), y2(static_cast<size_t>(n)), m2(static_cast<size_t>(n));
      k::launch_dropout(n, x.data(), y.data(), m.data(), 0.3, 42, 1000);
      cpu::dropout_forward(n, x.data(), y2.data(), m2.data(), 0.3, 42, 1000);
      CHECK(m == m2);
      CHECK(y == y2);
      k::launch_dropout<float>(n, nullptr, nullptr, m.data(), 0.6, 7, 3);
      cpu::dropout_mask(n, m2.data(), 0.6, 7, 3);
      CHECK(m == m2);
    }
  }
}

TEST_CASE("cuda kernels (emulated): layout, embedding, patches", "[cuda-emulation]") {
  const int64_t outer = 3, n = 11, inner = 5;
  auto x = rnd<float>(size_t(outer * n * inner), 10);
  std::vector<int32_t> idx = {3, 0, 3, 10, 7, 3, 1};
  const int64_t m = int64_t(idx.size());
  {
    std::vector<float> got(size_t(outer * 4 * inner)), want(got.size());
    k::launch_slice_copy<float>(outer, n, inner, 6, 4, x.data(), got.data());
    cpu::slice_copy<float>(outer, n, inner, 6, 4, x.data(), want.data());
    CHECK(got == want);
    std::vector<float> sg(x.size(), 9.f), sw(x.size(), 9.f);
    k::launch_slice_scatter<float>(outer, n, inner, 6, 4, got.data(), sg.data());
    cpu::slice_scatter<float>(outer, n, inner, 6, 4, want.data(), sw.data());
    CHECK(sg == sw);
    std::vector<float> pg(x.size(), 9.f), pw(x.size(), 9.f);
    k::launch_slice_place<float>(outer, n, inner, 6, 4, got.data(), pg.data());
    cpu::slice_place<float>(outer, n, inner, 6, 4, want.data(), pw.data());
    CHECK(pg == pw);
  }
  {
    std::vector<float> got(size_t(outer * m * inner)), want(got.size());
    k::launch_index_select(outer, n, inner, x.data(), m, idx.data(), got.data());
    cpu::index_select(outer, n, inner, x.data(), m, idx.data(), want.data());
    CHECK(got == want);
    std::vector<float> ag(x.size()), aw(x.size());
    k::launch_index_add(outer, n, inner, got.data(), m, idx.data(), ag.data());
    cpu::index_add(outer, n, inner, want.data(), m, idx.data(), aw.data());
    CHECK(ag == aw);  // same order of summation: bit-identical
  }
  {
    std::vector<int32_t> gidx(size_t(outer * m * inner));
    for (size_t i = 0; i < gidx.size(); ++i) gidx[i] = int32_t((i * 7) % size_t(n));
    std::vector<float> got(gidx.size()), want(gidx.size());
    k::launch_gather(outer, n, inner, x.data(), m, gidx.data(), got.data());
    cpu::gather(outer, n, inner, x.data(), m, gidx.data(), want.data());
    CHECK(got == want);
    std::vector<float> sg(x.size()), sw(x.size());
    k::launch_scatter_add(outer, n, inner, got.data(), m, gidx.data(), sg.data());
    cpu::scatter_add(outer, n, inner, want.data(), m, gidx.data(), sw.data());
    CHECK(sg == sw);
  }
  {
    const int64_t V = 11, C = 40;  // C not a multiple of the warp
    auto dout = rnd<float>(size_t(m * C), 11);
    std::vector<float> got(size_t(V * C)), want(size_t(V * C));
    k::launch_embedding_backward(V, C, dout.data(), m, idx.data(), got.data());
    cpu::embedding_backward(V, C, dout.data(), m, idx.data(), want.data());
    CHECK(got == want);
  }
  for (int64_t H : {16, 18}) {  // 18: the last row and column of pixels belong to no patch
    const int64_t B = 2, Cin = 3, kk = 4, K = Cin * kk * kk, rows = B * (H / kk) * (H / kk);
    auto img = rnd<float>(size_t(B * Cin * H * H), 12);
    std::vector<float> got(size_t(rows * K)), want(got.size());
    k::launch_im2col(B, Cin, H, H, kk, img.data(), got.data());
    cpu::im2col_patches(B, Cin, H, H, kk, img.data(), want.data());
    CHECK(got == want);
    std::vector<float> dg(img.size(), 5.f), dw(img.size(), 5.f);
    k::launch_col2im(B, Cin, H, H, kk, got.data(), dg.data());
    cpu::col2im_patches(B, Cin, H, H, kk, want.data(), dw.data());
    CHECK(dg == dw);
  }
}

TEST_CASE("cuda kernels (emulated): LayerNorm, softmax, cross-entropy", "[cuda-emulation]") {
  for (int64_t N : {1, 7, 37}) {
    for (int64_t C : {16, 65, 128}) {
      INFO("N " << N << " C " << C);
      auto x = rnd<double>(size_t(N * C), 13, 3.0), w = rnd<double>(size_t(C), 14), b = rnd<double>(size_t(C), 15);
      auto dy = rnd<double>(size_t(N * C), 16);
      std::vector<double> y(size_t(N * C)), mean(static_cast<size_t>(N)), rstd(static_cast<size_t>(N)), y2 = y, mean2 = mean, rstd2 = rstd;
      k::launch_layernorm_forward(N, C, x.data(), w.data(), b.data(), 1e-5, y.data(), mean.data(), rstd.data());
      cpu::layernorm_forward(N, C, x.data(), w.data(), b.data(), 1e-5, y2.data(), mean2.data(), rstd2.data());
      CHECK(near(y, y2, 1e-12));
      CHECK(near(rstd, rstd2, 1e-12));
      std::vector<double> dx(size_t(N * C)), dw(size_t(C), 0.5), db(size_t(C), 0.5), dx2 = dx, dw2 = dw, db2 = db;
      k::launch_layernorm_backward(N, C, dy.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.data(), dw.data(),
                                   db.data());
      cpu::layernorm_backward(N, C, dy.data(), x.data(), w.data(), mean2.data(), rstd2.data(), dx2.data(), dw2.data(),
                              db2.data());
      CHECK(near(dx, dx2, 1e-12));
      CHECK(near(dw, dw2, 1e-12));  // accumulated onto 0.5
      CHECK(near(db, db2, 1e-12));
      for (bool lg : {false, true}) {
        // rows (inner = 1) and columns (the softmax over the first dimension)
        for (auto [o, nn, in] : {std::tuple<int64_t, int64_t, int64_t>{N, C, 1}, {1, N, C}}) {
          std::vector<double> s(x.size()), s2(x.size()), g(x.size()), g2(x.size());
          k::launch_softmax_forward(o, nn, in, x.data(), s.data(), lg);
          cpu::softmax_forward(o, nn, in, x.data(), s2.data(), lg);
          CHECK(near(s, s2, 1e-13));
          k::launch_softmax_backward(o, nn, in, s2.data(), dy.data(), g.data(), lg);
          cpu::softmax_backward(o, nn, in, s2.data(), dy.data(), g2.data(), lg);
          CHECK(near(g, g2, 1e-13));
        }
      }
    }
  }
  for (int64_t N : {1, 7, 65}) {
    const int64_t V = 67;
    auto x = rnd<double>(size_t(N * V), 17, 2.0);
    std::vector<int32_t> t(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) t[size_t(i)] = i % 5 == 2 ? -100 : int32_t((i * 13) % V);
    std::vector<double> l(static_cast<size_t>(N)), l2(static_cast<size_t>(N));
    k::launch_cross_entropy_forward(N, V, x.data(), t.data(), -100, l.data());
    const int64_t count = cpu::cross_entropy_forward(N, V, x.data(), t.data(), -100, l2.data());
    CHECK(near(l, l2, 1e-13));
    std::vector<double> mean(1), mean2(1);
    k::launch_loss_mean(N, l.data(), count, mean.data());
    cpu::loss_mean(N, l2.data(), count, mean2.data());
    CHECK(near(mean, mean2, 1e-13));
    std::vector<double> d(x.size()), d2(x.size());
    k::launch_cross_entropy_backward(N, V, x.data(), t.data(), -100, 0.25, d.data());
    cpu::cross_entropy_backward(N, V, x.data(), t.data(), -100, 0.25, d2.data());
    CHECK(near(d, d2, 1e-13));
  }
}

TEST_CASE("cuda kernels (emulated): flash attention forward and backward", "[cuda-emulation][attention]") {
  struct Case { int64_t B, T, H, D; bool causal; double p; };
  const Case cases[] = {{1, 1, 1, 16, true, 0},   {2, 7, 2, 16, false, 0},  {1, 37, 2, 16, true, 0},
                        {1, 41, 1, 64, true, 0},  {1, 33, 1, 128, false, 0}, {1, 37, 2, 20, false, 0},
                        {2, 13, 2, 16, true, 0.3}, {1, 40, 1, 32, false, 0.2}};
  for (const auto& c : cases) {
    const int64_t C = c.H * c.D, T = c.T;
    INFO("B " << c.B << " T " << T << " H " << c.H << " D " << c.D << (c.causal ? " causal" : "") << " p " << c.p);
    auto qkv = rnd<double>(size_t(c.B * T * 3 * C), 18, 0.7), dout = rnd<double>(size_t(c.B * T * C), 19);
    const double scale = 1.0 / std::sqrt(double(C));
    const uint64_t seed = 5, base = 100;
    // CPU: the mask from the same Philox counters (each batch row from its own
    // range: B 2, T 13, H 2 is a row of 338 weights, not a whole number of blocks), P saved.
    std::vector<double> probs(size_t(c.B * c.H * T * T)), want(size_t(c.B * T * C));
    seemore::detail::CpuKeep keep;
    if (c.p > 0)
      keep = seemore::detail::cpu_keep_fill<double>(seemore::detail::dropout_rows({c.B, c.H, T, T}), nullptr, nullptr,
                                                    c.p, seed, base);
    cpu::attention_forward(c.B, T, c.H, c.D, qkv.data(), scale, c.causal, c.p > 0 ? &keep.bits : nullptr,
                           probs.data(), want.data());
    std::vector<double> dwant(qkv.size());
    cpu::attention_backward(c.B, T, c.H, c.D, qkv.data(), scale, c.causal, c.p > 0 ? &keep.bits : nullptr,
                            probs.data(), dout.data(), dwant.data());
    // Flash: lse only, the mask recomputed in the kernels.
    const auto a = k::packed_args(c.B, T, c.H, c.D, qkv.data(), sizeof(double), scale, c.causal, c.p, seed, base);
    std::vector<double> out(want.size()), lse(size_t(c.B * c.H * T)), delta(lse.size()), dq(qkv.size(), 7.0);
    k::launch_attention_forward(a, out.data(), lse.data());
    CHECK(near(out, want, 1e-12));
    k::launch_attention_backward(a, out.data(), dout.data(), lse.data(), delta.data(), dq.data(), dq.data() + C,
                                 dq.data() + 2 * C);
    CHECK(near(dq, dwant, 1e-11));
  }
}

TEST_CASE("cuda kernels (emulated): decoding attention over a KV cache", "[cuda-emulation][attention]") {
  const int64_t B = 1, H = 2, D = 16, C = H * D, Tmax = 40, pos = 29, Tn = 3;
  auto q = rnd<float>(size_t(B * Tn * 3 * C), 20), kc = rnd<float>(size_t(B * Tmax * C), 21),
       vc = rnd<float>(size_t(B * Tmax * C), 22);
  std::vector<float> got(size_t(B * Tn * C)), want(got.size());
  const float scale = 0.2f;
  k::AttnArgs a{B, H, D, Tn, pos + Tn, pos, q.data(), kc.data(), vc.data(), 3 * C, C, C, Tn * 3 * C, Tmax * C,
                Tmax * C, C, Tn * C, double(scale), true, 0, 1.0, 0, 0, 0, nullptr};
  k::launch_attention_forward<float>(a, got.data(), nullptr);
  cpu::attention_cached(B, Tn, pos, Tmax, H, D, q.data(), 3 * C, kc.data(), vc.data(), scale, want.data());
  CHECK(near(got, want, 1e-5));
}

TEST_CASE("cuda kernels (emulated): one fused Adam launch for many tensors", "[cuda-emulation]") {
  for (bool decoupled : {false, true}) {
    std::vector<int64_t> sizes = {1, 7, 8193, 300};  // 8193: one element past a chunk
    std::vector<std::vector<float>> p, g, m, v;
    std::vector<seemore::Tensor<float>> params;
    for (size_t i = 0; i < sizes.size(); ++i) {
      p.push_back(rnd<float>(size_t(sizes[i]), 30 + i));
      g.push_back(rnd<float>(size_t(sizes[i]), 40 + i));
      m.push_back(std::vector<float>(size_t(sizes[i]), 0.f));
      v.push_back(std::vector<float>(size_t(sizes[i]), 0.f));
      params.push_back(seemore::Tensor<float>::from_vector({sizes[i]}, p.back()).requires_grad_());
    }
    seemore::optim::AdamOptions ao{1e-2, 0.9, 0.999, 1e-8, 0.1, decoupled};
    // Two groups: the last two tensors without weight decay (a per-tensor λ in the table).
    std::vector<seemore::optim::ParamGroup<float>> groups(2);
    groups[0].params = {params[0], params[1]};
    groups[1].params = {params[2], params[3]};
    groups[1].weight_decay = 0.0;
    seemore::optim::Adam<float> cpu_opt(groups, ao);
    for (int t = 1; t <= 3; ++t) {
      std::vector<k::AdamTensor<float>> ts;
      const double bc1 = 1 - std::pow(ao.beta1, t), bc2 = 1 - std::pow(ao.beta2, t);
      for (size_t i = 0; i < sizes.size(); ++i) {
        const double wd = i < 2 ? ao.weight_decay : 0.0;
        ts.push_back({p[i].data(), g[i].data(), m[i].data(), v[i].data(), sizes[i], float(ao.lr / bc1),
                      float(std::sqrt(bc2)), float(1 - ao.lr * wd), float(wd)});
        params[i].set_grad(seemore::Tensor<float>::from_vector({sizes[i]}, g[i]));
      }
      k::launch_adam(ts, k::AdamHyper<float>{0.9f, 0.999f, 1e-8f, !decoupled, decoupled});
      cpu_opt.step();
    }
    for (size_t i = 0; i < sizes.size(); ++i) CHECK(p[i] == params[i].to_vector());
  }
}
