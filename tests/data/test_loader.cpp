// Mini-batches of tensor data: every sample once per epoch, an order that
// depends only on (seed, epoch), rows taken as asked.
#include <catch2/catch.hpp>
#include <seemore/data/loader.hpp>

#include <algorithm>

using namespace seemore;

TEST_CASE("data: BatchSampler covers every sample once per epoch, reproducibly", "[data]") {
  data::BatchSampler s(10, 4, true, 7);
  CHECK(s.batches_per_epoch() == 3);
  auto e0 = s.epoch(0), e1 = s.epoch(1);
  REQUIRE(e0.size() == 3);
  CHECK(e0[2].size() == 2);  // the last, smaller batch
  std::vector<int64_t> all;
  for (auto& b : e0) all.insert(all.end(), b.begin(), b.end());
  std::vector<int64_t> sorted = all;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> want(10);
  std::iota(want.begin(), want.end(), int64_t(0));
  CHECK(sorted == want);
  CHECK(all != want);                                    // shuffled
  CHECK(e0 != e1);                                       // a new order each epoch
  CHECK(data::BatchSampler(10, 4, true, 7).epoch(1) == e1);  // the same (seed, epoch), the same batches
  CHECK(data::BatchSampler(10, 4, true, 8).epoch(0) != e0);
  // In order, and without the partial batch.
  data::BatchSampler ordered(10, 4, false, 0, true);
  CHECK(ordered.epoch(3) == std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}});
  CHECK_THROWS_WITH(data::BatchSampler(3, 4, true, 0, true), Catch::Contains("leaves no batch"));
  CHECK_THROWS_WITH(data::BatchSampler(3, 0), Catch::Contains("the batch > 0"));
}

TEST_CASE("data: take_rows copies the asked rows of any tensor", "[data]") {
  auto x = Tensor<float>::from_vector({3, 2}, {0, 1, 10, 11, 20, 21});
  CHECK(data::take_rows(x, {2, 0}).to_vector() == std::vector<float>{20, 21, 0, 1});
  auto y = Tensor<int32_t>::from_vector({3}, {5, 6, 7});
  auto yb = data::take_rows(y, {1, 1});
  CHECK(yb.shape() == Shape{2});
  CHECK(yb.to_vector() == std::vector<int32_t>{6, 6});
  CHECK_THROWS_WITH(data::take_rows(x, {3}), Catch::Contains("index 3 outside the 3 rows of [3,2]"));
}
