#include <catch2/catch.hpp>

#include <tuple>

#include "../support/gradcheck.hpp"

using namespace seemore;
using namespace seemore::testing;

TEST_CASE("reduce: sum and mean", "[ops][reduce][grad]") {
  auto a = TensorD::from_vector({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(sum(a).item() == 21);
  CHECK(mean(a).item() == 3.5);
  CHECK(sum(a, {0}).to_vector() == std::vector<double>{5, 7, 9});
  CHECK(sum(a, {-1}, true).shape() == Shape{2, 1});
  CHECK(mean(a, {1}).to_vector() == std::vector<double>{2, 5});
  CHECK_THROWS_WITH(sum(a, {2}), Catch::Contains("out of range"));
  for (int64_t n : {1, 7, 65}) {
    auto x = randn({n, 3, 7}, 3);
    CHECK_GRADS(gradcheck([](auto& v) { return sum(v[0], {0, 2}); }, {x}), 1e-5);
    CHECK_GRADS(gradcheck([](auto& v) { return mean(v[0], {1}, true); }, {x}), 1e-5);
    CHECK_GRADS(gradcheck([](auto& v) { return mean(v[0]); }, {x}), 1e-5);
  }
}

TEST_CASE("shape: reshape, permute, transpose", "[ops][shape][grad]") {
  auto a = TensorD::arange(24);
  auto r = reshape(a, {2, 3, 4});
  CHECK(r.shares_storage_with(a));
  auto p = permute(r, {2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.at({3, 1, 2}) == r.at({1, 2, 3}));
  auto t = transpose(r, 0, -1);
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(t.at({1, 2, 0}) == r.at({0, 2, 1}));
  CHECK_THROWS_WITH(reshape(a, {5, 5}), Catch::Contains("reshape"));
  CHECK_THROWS_WITH(permute(r, {0, 0, 1}), Catch::Contains("repeated"));
  for (int64_t n : {1, 7, 65}) {
    auto x = randn({n, 3, 5}, 4);
    CHECK_GRADS(gradcheck([](auto& v) { return reshape(v[0], {5, -1}) * 2.0; }, {x}), 1e-5);
    CHECK_GRADS(gradcheck([](auto& v) { return permute(v[0], {1, 2, 0}); }, {x}), 1e-5);
    CHECK_GRADS(gradcheck([](auto& v) { return transpose(v[0], 0, 1); }, {x}), 1e-5);
  }
}

TEST_CASE("shape: concat and slice", "[ops][shape][grad]") {
  auto a = TensorD::from_vector({2, 2}, {1, 2, 3, 4}), b = TensorD::from_vector({2, 1}, {5, 6});
  auto c = concat<double>({a, b}, 1);
  CHECK(c.to_vector() == std::vector<double>{1, 2, 5, 3, 4, 6});
  CHECK(concat<double>({a, a}, 0).shape() == Shape{4, 2});
  CHECK(slice(c, 1, 1, 3).to_vector() == std::vector<double>{2, 5, 4, 6});
  CHECK_THROWS_WITH(concat<double>({a, b}, 0), Catch::Contains("concat") && Catch::Contains("[2,1]"));
  CHECK_THROWS_WITH(slice(c, 1, 2, 4), Catch::Contains("out of bounds"));
  for (int64_t n : {1, 7, 65}) {
    auto x = randn({3, n, 2}, 5), y = randn({3, 1, 2}, 6);
    CHECK_GRADS(gradcheck([](auto& v) { return concat<double>({v[0], v[1], v[0]}, 1); }, {x, y}), 1e-5);
    CHECK_GRADS(gradcheck([n](auto& v) { return slice(v[0], 1, n / 2, n); }, {x}), 1e-5);
    CHECK_GRADS(gradcheck([](auto& v) { return slice(v[0], 0, 1, 2); }, {x}), 1e-5);
  }
}

// Big slices and concats are split over the threads by elements, a single
// run (a weight's rows) included: against index loops, on 1 and 2 threads.
TEST_CASE("shape: big slices, their gradient and concat, split over threads", "[ops][shape]") {
  namespace cpu = backend::cpu;
  const int threads = cpu::max_threads();
  for (int t : {1, 2})
    for (auto [outer, n, inner, start, len] : {std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>{1, 1536, 512, 512, 512},
                                               {16, 37, 512, 1, 36}, {16, 37, 512, 0, 1}, {3, 70000, 1, 5, 69990},
                                               {2, 9, 40000, 8, 1}}) {
      cpu::set_num_threads(t);
      INFO("threads " << t << " outer " << outer << " n " << n << " inner " << inner << " [" << start << ", "
                      << start + len << ")");
      std::vector<float> x(size_t(outer * n * inner)), part(size_t(outer * len * inner)), back(x.size(), 7.0f),
          placed(x.size(), 3.0f);
      for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 1009) - 500.0f;
      cpu::slice_copy<float>(outer, n, inner, start, len, x.data(), part.data());
      cpu::slice_scatter<float>(outer, n, inner, start, len, part.data(), back.data());
      cpu::slice_place<float>(outer, n, inner, start, len, part.data(), placed.data());
      int64_t wrong = 0;
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < n; ++j)
          for (int64_t i = 0; i < inner; ++i) {
            const size_t at = size_t((o * n + j) * inner + i);
            const bool in = j >= start && j < start + len;
            if (in) wrong += part[size_t((o * len + j - start) * inner + i)] != x[at];
            wrong += back[at] != (in ? x[at] : 0.0f);
            wrong += placed[at] != (in ? x[at] : 3.0f);
          }
      CHECK(wrong == 0);
    }
  cpu::set_num_threads(threads);
}

TEST_CASE("shape: index_select, gather, embedding", "[ops][shape][grad]") {
  auto t = TensorD::from_vector({3, 2}, {1, 2, 3, 4, 5, 6});
  auto idx = Tensor<int32_t>::from_vector({4}, {2, 0, 2, 1});
  CHECK(index_select(t, 0, idx).to_vector() == std::vector<double>{5, 6, 1, 2, 5, 6, 3, 4});
  auto gi = Tensor<int32_t>::from_vector({3, 1}, {1, 0, 1});
  CHECK(gather(t, 1, gi).to_vector() == std::vector<double>{2, 3, 6});
  auto ids = Tensor<int32_t>::from_vector({2, 2}, {0, 2, 2, 1});
  auto e = embedding(t, ids);
  CHECK(e.shape() == Shape{2, 2, 2});
  CHECK(e.to_vector() == std::vector<double>{1, 2, 5, 6, 5, 6, 3, 4});
  CHECK_THROWS_WITH(embedding(t, Tensor<int32_t>::from_vector({1}, {3})),
                    Catch::Contains("index 3 at position 0 is outside [0, 3)"));
  for (int64_t n : {1, 7, 65}) {
    auto x = randn({n, 4, 3}, 7);
    std::vector<int32_t> iv, gv;
    for (int64_t i = 0; i < 9; ++i) iv.push_back(int32_t((i * 5) % 4));  // repeats: gradients must add
    for (int64_t i = 0; i < n * 2 * 3; ++i) gv.push_back(int32_t((i * 7) % 4));
    auto sel = Tensor<int32_t>::from_vector({9}, iv);
    auto gat = Tensor<int32_t>::from_vector({n, 2, 3}, gv);
    CHECK_GRADS(gradcheck([&](auto& v) { return index_select(v[0], 1, sel); }, {x}), 1e-5);
    CHECK_GRADS(gradcheck([&](auto& v) { return gather(v[0], 1, gat); }, {x}), 1e-5);
    auto table = randn({n + 3, 5}, 8);
    std::vector<int32_t> tv;
    for (int64_t i = 0; i < 2 * n; ++i) tv.push_back(int32_t((i * 3) % (n + 3)));
    auto tok = Tensor<int32_t>::from_vector({2, n}, tv);
    CHECK_GRADS(gradcheck([&](auto& v) { return embedding(v[0], tok); }, {table}), 1e-5);
  }
}

TEST_CASE("argmax: first largest along a dimension, NaN the largest, as torch.argmax", "[ops]") {
  auto x = Tensor<float>::from_vector({2, 3}, {1.f, 5.f, 5.f, 7.f, -1.f, 2.f});
  CHECK(argmax(x).to_vector() == std::vector<int32_t>{1, 0});           // ties: the first
  CHECK(argmax(x, 0).to_vector() == std::vector<int32_t>{1, 0, 0});
  CHECK(argmax(x, 1, true).shape() == Shape{2, 1});
  auto n = Tensor<double>::from_vector({4}, {1.0, std::nan(""), 9.0, std::nan("")});
  CHECK(argmax(n).to_vector() == std::vector<int32_t>{1});
  auto y = Tensor<float>::from_vector({2, 2, 2}, {0, 1, 2, 3, 7, 6, 5, 4});
  CHECK(argmax(y, 1).to_vector() == std::vector<int32_t>{1, 1, 0, 0});   // a middle dimension
  CHECK_THROWS_WITH(argmax(Tensor<float>::zeros({2, 0}), 1), Catch::Contains("argmax: dimension 1 of [2,0] is empty"));
}
