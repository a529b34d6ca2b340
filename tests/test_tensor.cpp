#include <catch2/catch.hpp>
#include <seemore/vlm.hpp>

#include <sstream>

using namespace seemore;
using TF = Tensor<float>;

TEST_CASE("tensor: creation helpers", "[tensor]") {
  auto z = TF::zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.numel() == 6);
  for (float v : z.to_vector()) CHECK(v == 0.0f);
  auto o = TF::ones({4});
  for (float v : o.to_vector()) CHECK(v == 1.0f);
  auto f = TF::full({1, 7}, 2.5f);
  CHECK(f.at({0, 6}) == 2.5f);
  auto a = TF::arange(5);
  CHECK(a.to_vector() == std::vector<float>{0, 1, 2, 3, 4});
  auto s = TF::scalar(3.0f);
  CHECK(s.ndim() == 0);
  CHECK(s.item() == 3.0f);
  CHECK_THROWS_WITH(TF::from_vector({2, 2}, {1, 2, 3}), Catch::Contains("3 values for shape [2,2]"));
  CHECK_THROWS_WITH(TF::zeros({2, -1}), Catch::Contains("negative dimension"));
}

TEST_CASE("tensor: seeded generator is reproducible and well distributed", "[tensor][random]") {
  Generator g1(42), g2(42), g3(43);
  auto a = TF::randn({1000}, g1), b = TF::randn({1000}, g2), c = TF::randn({1000}, g3);
  CHECK(a.to_vector() == b.to_vector());
  CHECK(a.to_vector() != c.to_vector());
  // The stream is a function of (seed, counter): these are Philox4x32-10 values,
  // so a change to the generator (which would break checkpoints' reproducibility) fails here.
  auto blk = Philox::block(0, 0);
  CHECK(blk[0] == 0x6627e8d5u);
  CHECK(blk[1] == 0xe169c58du);
  CHECK(blk[2] == 0xbc57ac4cu);
  CHECK(blk[3] == 0x9b00dbd8u);
  double m = 0, v = 0;
  Generator g(7);
  auto big = Tensor<double>::randn({100000}, g);
  for (double x : big.to_vector()) m += x;
  m /= 100000;
  for (double x : big.to_vector()) v += (x - m) * (x - m);
  v /= 100000;
  CHECK(std::abs(m) < 0.02);
  CHECK(std::abs(v - 1) < 0.02);
  auto u = Tensor<double>::uniform({100000}, -2, 3, g);
  double lo = 1e9, hi = -1e9, mu = 0;
  for (double x : u.to_vector()) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    mu += x;
  }
  CHECK(lo >= -2);
  CHECK(hi < 3);
  CHECK(std::abs(mu / 100000 - 0.5) < 0.02);
}

TEST_CASE("tensor: views share storage", "[tensor]") {
  auto t = TF::arange(12);
  auto v = t.view({3, 4});
  CHECK(v.shares_storage_with(t));
  CHECK(v.at({2, 1}) == 9.0f);
  auto r = v.rows(1, 3);
  CHECK(r.shape() == Shape{2, 4});
  CHECK(r.at({0, 0}) == 4.0f);
  r.data()[0] = 100;
  CHECK(t.to_vector()[4] == 100.0f);
  CHECK(t.view({-1, 6}).shape() == Shape{2, 6});
  CHECK_THROWS_WITH(t.view({5, -1}), Catch::Contains("cannot infer"));
  CHECK_THROWS_WITH(v.rows(2, 4), Catch::Contains("out of bounds"));
  auto c = t.clone();
  CHECK_FALSE(c.shares_storage_with(t));
}

TEST_CASE("tensor: printing and comparison helpers", "[tensor]") {
  auto t = TF::from_vector({2, 2}, {1, 2, 3, 4});
  std::ostringstream os;
  os << t;
  CHECK(os.str().find("Tensor[2,2] on cpu") != std::string::npos);
  auto u = TF::from_vector({2, 2}, {1, 2, 3, 4.00001f});
  CHECK(allclose(u, t, 1e-5, 0));
  CHECK_FALSE(allclose(u, t, 1e-7, 0));
  CHECK(max_abs_diff(u, t) == Approx(1e-5).margin(1e-6));
  auto n = TF::from_vector({1}, {std::nanf("")});
  CHECK_FALSE(allclose(n, n));
}

TEST_CASE("tensor: device tags", "[tensor]") {
  CHECK(Device::cpu().is_cpu());
  CHECK(Device::parse("cpu") == Device::cpu());
  CHECK_THROWS_WITH(Device::parse("tpu"), Catch::Contains("unknown device 'tpu'"));
#if !SEEMORE_HAS_CUDA
  CHECK_THROWS_WITH(Device::cuda(), Catch::Contains("built without CUDA"));
#endif
}
