// Data parallelism in one process: the micro-batch split, the pieces it
// rests on (batch-sliced dropout counters, the slice loss divisor, the
// grad-ready hook) and DataParallel over the local communicator. The MPI
// ranks are tested by test_mpi.cpp and test_mpi_cli.sh.
#include <catch2/catch.hpp>
#include <seemore/distributed.hpp>
#include <seemore/vlm.hpp>

using namespace seemore;
using distributed::MicroBatch;

namespace {
nn::VLMConfig tiny_dp(const std::string& preset) {
  auto c = nn::VLMConfig::from_preset(preset);
  c.img_size = 16;
  c.patch_size = 8;
  c.image_embed_dim = 12;  // 4 patches + CLS = 5 rows of 12: rows of 60, and 3 heads → unaligned counters
  c.num_blks = 1;
  c.n_embd = 12;
  c.n_layer = 2;
  c.n_head = 3;
  c.block_size = 32;
  c.dropout = 0.2;
  return c;
}
template <class T>
std::vector<T> values(const Tensor<T>& t) {
  return t.to_vector();
}
}  // namespace

TEST_CASE("micro_batches: the global batch cut into ranks x accum runs, in order", "[distributed]") {
  // 10 samples over 2 ranks x 2: runs of 2, 3, 2, 3 (⌊m·B/M⌋ boundaries), rank 1 holding the last two.
  auto r0 = distributed::micro_batches(10, 0, 2, 2), r1 = distributed::micro_batches(10, 1, 2, 2);
  REQUIRE(r0.size() == 2);
  REQUIRE(r1.size() == 2);
  std::vector<int64_t> begins, counts;
  for (auto& v : {r0, r1})
    for (auto& mb : v) {
      begins.push_back(mb.begin);
      counts.push_back(mb.count);
      CHECK(mb.total == 10);
    }
  CHECK(begins == std::vector<int64_t>{0, 2, 5, 7});
  CHECK(counts == std::vector<int64_t>{2, 3, 2, 3});
  CHECK(r1[1].index == 3);
  CHECK_THROWS_WITH(distributed::micro_batches(3, 0, 2, 2), Catch::Contains("cannot be cut into 4 micro-batches"));
  CHECK_THROWS_WITH(distributed::micro_batches(8, 0, 1, 0), Catch::Contains("must be >= 1"));
}

TEST_CASE("dropout: a row's mask is the same in the whole batch and in any slice of it", "[distributed][dropout]") {
  // Rows of 35 elements: not a whole number of Philox blocks, so each row's
  // counters start on a block boundary of their own.
  for (Shape row : {Shape{5, 7}, Shape{4, 8}}) {
    Shape whole_shape{6};
    whole_shape.insert(whole_shape.end(), row.begin(), row.end());
    const int64_t per = numel_of(row);
    auto x = Tensor<float>::ones(whole_shape);
    Generator whole(42);
    whole.set_state(42, 1000);
    auto full = values(dropout(x, 0.5, true, whole));
    for (auto [begin, count] : {std::pair<int64_t, int64_t>{0, 6}, {0, 1}, {2, 3}, {5, 1}}) {
      Generator g(42);
      g.set_state(42, 1000);
      Shape part_shape = whole_shape;
      part_shape[0] = count;
      std::vector<float> got;
      {
        BatchSliceGuard slice(g, {begin, count, 6});
        got = values(dropout(Tensor<float>::ones(part_shape), 0.5, true, g));
      }
      INFO("rows of " << per << ", slice [" << begin << ", " << begin + count << ")");
      CHECK(std::equal(got.begin(), got.end(), full.begin() + begin * per));
      CHECK(g.offset() == whole.offset());  // the whole batch's counters are used up, whatever the slice
    }
  }
  // A fill over rows other than the slice's is refused.
  Generator g(1);
  BatchSliceGuard slice(g, {0, 2, 4});
  CHECK_THROWS_WITH(dropout(Tensor<float>::ones({3, 4}), 0.5, true, g), Catch::Contains("rows [0, 2) of a batch of 4"));
}

TEST_CASE("attention dropout: a batch row's weights are the same in a slice", "[distributed][dropout][attention]") {
  const int64_t B = 4, T = 5, H = 3, D = 4, C = H * D;  // H·T·T = 75 weights a row
  Generator data(3);
  auto qkv = Tensor<double>::randn({B, T, 3 * C}, data);
  AttentionOptions o;
  o.n_head = H;
  o.scale = 0.5;
  o.causal = true;
  o.dropout = 0.3;
  o.training = true;
  Generator whole(9);
  auto full = values(attention(qkv, o, &whole));
  Generator g(9);
  BatchSliceGuard slice(g, {1, 2, B});
  auto part = values(attention(qkv.rows(1, 3).clone(), o, &g));
  CHECK(std::equal(part.begin(), part.end(), full.begin() + T * C));
  CHECK(g.offset() == whole.offset());
}

TEST_CASE("cross_entropy divide_by: slices add up to the whole batch's mean", "[distributed][loss]") {
  Generator g(5);
  auto logits = Tensor<double>::randn({6, 7}, g).requires_grad_();
  auto targets = Tensor<int32_t>::from_vector({6}, {1, -100, 3, 6, -100, 0});
  auto whole = cross_entropy(logits, targets);
  whole.backward();
  const auto want = logits.grad().to_vector();
  logits.zero_grad();
  double sum = 0;
  for (auto [b, e] : {std::pair<int64_t, int64_t>{0, 2}, {2, 6}}) {
    auto part = cross_entropy(slice(logits, 0, b, e), slice(targets, 0, b, e), -100, 4);
    sum += part.item();
    part.backward();
  }
  CHECK(sum == Approx(whole.item()).epsilon(1e-14));
  const auto got = logits.grad().to_vector();
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-15));
  CHECK_THROWS_WITH(cross_entropy(logits, targets, -100, -1), Catch::Contains("divide_by must be >= 0"));
}

TEST_CASE("grad_ready_hook: once per backward, after the last contribution", "[distributed][autograd]") {
  auto w = Tensor<double>::from_vector({2}, {1.5, -2.0}).requires_grad_();
  auto v = Tensor<double>::from_vector({2}, {3.0, 0.5}).requires_grad_();
  std::vector<std::vector<double>> seen;
  int v_calls = 0;
  w.set_grad_ready_hook([&] { seen.push_back(w.grad().to_vector()); });
  v.set_grad_ready_hook([&] { ++v_calls; });
  // w is used three times; its hook must see the sum of all three contributions.
  auto loss = sum(add(mul(w, w), mul(w, v)));
  loss.backward();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == std::vector<double>{2 * 1.5 + 3.0, 2 * -2.0 + 0.5});
  CHECK(v_calls == 1);
  // A second backward runs it again; a leaf as the root too.
  sum(w).backward();
  CHECK(seen.size() == 2);
  w.set_grad_ready_hook({});
  sum(w).backward();
  CHECK(seen.size() == 2);
  auto interior = add(w, v);
  CHECK_THROWS_WITH(interior.set_grad_ready_hook([] {}), Catch::Contains("only a leaf"));
}

TEST_CASE("DataParallel (one process): accumulation gives the whole batch's loss and gradients",
          "[distributed][data-parallel]") {
  for (std::string preset : {"seemore", "standard"}) {
    DYNAMIC_SECTION(preset) {
      const auto cfg = tiny_dp(preset);
      const int64_t B = 6, L = 9;
      Generator data(11);
      auto images = Tensor<double>::randn({B, 3, 16, 16}, data);
      std::vector<int32_t> tok, tgt;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < L; ++t) {
          const bool pad = t >= 4 + b % 4;  // captions of 4..7 characters, padded
          tok.push_back(pad ? int32_t(cfg.pad_id) : int32_t(1 + (b * 7 + t * 3) % 60));
        }
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < L; ++t) tgt.push_back(t + 1 < L ? tok[size_t(b * L + t + 1)] : int32_t(cfg.pad_id));
      auto tokens = Tensor<int32_t>::from_vector({B, L}, tok), targets = Tensor<int32_t>::from_vector({B, L}, tgt);

      // The oracle: one forward and backward of the whole batch, dropout on.
      nn::VisionLanguageModel<double> ref(cfg, 4);
      ref.train();
      auto out = ref.forward(images, tokens, targets);
      out.loss.backward();
      std::vector<std::vector<double>> want;
      for (auto& p : ref.parameters()) want.push_back(p.grad().to_vector());
      const int64_t count = ref.loss_count(targets);

      for (int64_t accum : {1, 2, 4}) {
        for (size_t bucket : {size_t(64), size_t(1) << 20}) {
          nn::VisionLanguageModel<double> m(cfg, 4);
          m.train();
          optim::SGD<double> opt(m.parameters(), 0.1);
          distributed::LocalCommunicator comm;
          distributed::DataParallelOptions o;
          o.bucket_bytes = bucket;
          distributed::DataParallel<double> dp(opt, comm, o);
          const double loss = dp.compute_gradients(B, accum, [&](const MicroBatch& mb) {
            return m.forward(images.rows(mb.begin, mb.begin + mb.count).clone(),
                             tokens.rows(mb.begin, mb.begin + mb.count).clone(),
                             targets.rows(mb.begin, mb.begin + mb.count).clone(), count).loss;
          }, &m.dropout_generator());
          INFO("accum " << accum << ", buckets " << dp.buckets());
          CHECK(m.dropout_generator().offset() == ref.dropout_generator().offset());
          auto params = m.parameters();
          if (accum == 1) {  // the same computation: the same bits
            CHECK(loss == out.loss.item());
            for (size_t k = 0; k < params.size(); ++k) CHECK(params[k].grad().to_vector() == want[k]);
          } else {
            CHECK(loss == Approx(out.loss.item()).epsilon(1e-12));
            double worst = 0;
            for (size_t k = 0; k < params.size(); ++k) {
              const auto g = params[k].grad().to_vector();
              for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - want[k][i]));
            }
            CHECK(worst < 1e-12);
          }
          // The gradients are those of a normal step: the optimizer takes them.
          const auto before = params[0].to_vector();
          opt.step();
          CHECK(params[0].to_vector() != before);
        }
      }
    }
  }
}

TEST_CASE("DataParallel: refuses what cannot work", "[distributed][data-parallel]") {
  auto w = Tensor<float>::zeros({3}).requires_grad_();
  optim::SGD<float> opt({w}, 0.1);
  distributed::LocalCommunicator comm;
  distributed::DataParallel<float> dp(opt, comm);
  CHECK_THROWS_WITH(dp.compute_gradients(4, 1, [&](const MicroBatch&) { return Tensor<float>(); }),
                    Catch::Contains("must return the loss"));
  CHECK_THROWS_WITH(dp.compute_gradients(2, 3, [&](const MicroBatch&) { return sum(w); }),
                    Catch::Contains("cannot be cut into 3"));
  // A backward outside compute_gradients leaves .grad alone.
  sum(w).backward();
  CHECK(w.grad().to_vector() == std::vector<float>{1, 1, 1});
}
