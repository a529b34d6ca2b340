#include <catch2/catch.hpp>
#include <seemore/vlm.hpp>

#include <cstring>
#include <limits>

using namespace seemore;

namespace {
std::string with_header(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return out + json + data;
}
}  // namespace

TEST_CASE("safetensors: round trip, F16 and BF16 reading", "[io][safetensors]") {
  Generator g(1);
  std::vector<std::pair<std::string, Tensor<float>>> ts = {{"a", Tensor<float>::randn({2, 3}, g)},
                                                           {"b.c", Tensor<float>::randn({7}, g)},
                                                           {"empty", Tensor<float>::zeros({0, 4})}};
  auto bytes = io::serialize_safetensors(ts, {{"k", "v"}});
  CHECK(bytes.size() % 4 == 0);
  auto st = io::parse_safetensors(bytes, "mem");
  REQUIRE(st.tensors.size() == 3);
  CHECK(st.find("a")->to_vector() == ts[0].second.to_vector());
  CHECK(st.find("b.c")->shape() == Shape{7});
  CHECK(st.find("empty")->shape() == Shape{0, 4});
  CHECK(st.metadata.at("k") == "v");
  // F16: 1.0 = 0x3c00, -2.5 = 0xc100, 65504 = 0x7bff, smallest subnormal 0x0001 = 2^-24.
  // BF16: 1.0 = 0x3f80, -3.0 = 0xc040.
  std::string data;
  for (uint16_t h : {0x3c00, 0xc100, 0x7bff, 0x0001, 0x3f80, 0xc040}) data.append(reinterpret_cast<char*>(&h), 2);
  auto f = io::parse_safetensors(
      with_header(R"({"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}})", data),
      "mem");
  CHECK(f.find("h")->to_vector() == std::vector<float>{1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24)});
  CHECK(f.find("b")->to_vector() == std::vector<float>{1.0f, -3.0f});
  // F64 (a model saved in double precision), rounded to float.
  std::string d64;
  const double fmax = std::numeric_limits<float>::max();
  for (double v : {0.1, -2.0, 1e300, -1e300, fmax * (1 + 1e-9)}) d64.append(reinterpret_cast<char*>(&v), 8);
  auto d = io::parse_safetensors(with_header(R"({"d":{"dtype":"F64","shape":[5],"data_offsets":[0,40]}})", d64), "mem");
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(d.find("d")->to_vector() == std::vector<float>{0.1f, -2.0f, inf, -inf, float(fmax)});
}

TEST_CASE("safetensors: malformed files are refused with a message naming the problem", "[io][safetensors]") {
  const std::string four(4, '\0');
  struct Bad {
    std::string bytes, expect;
  };
  std::vector<Bad> bad = {
      {"abc", "shorter than the 8-byte header length"},
      {with_header("{}", "").substr(0, 9), "truncated"},
      {std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}", "exceeds 100 MB"},
      {with_header("[1,2]", ""), "must be a JSON object"},
      {with_header("{\"a\":", ""), "not valid JSON"},
      {with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", four + four), "appears twice"},
      {with_header(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", four), "unknown dtype"},
      {with_header(R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", four + four), "not supported"},
      {with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", four), "expected 8"},
      {with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", four), "beyond"},
      {with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", four), "end before"},
      {with_header(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", four), "non-negative"},
      {with_header(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", four), "overflows"},
      {with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", four + four), "cover 4 of 8"},
      {with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", four + four), "(gap)"},
      {with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", four + four), "(overlap)"},
      {with_header(R"({"a":{"dtype":"F32","shape":[1]}})", four), "needs dtype, shape and data_offsets"},
      {with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}})", four), "beyond"},
      {with_header(R"({"__metadata__":{"k":1}})", ""), "must be a string"},
      {with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]}})", four), "data_offsets"},
      {with_header(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", four), "non-negative"},
      {with_header("{\"\xc3\x28\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", four), "not valid JSON"},
      {std::string("\x40\x00\x00\x00\x00\x00\x00\x00", 8) + "{}", "truncated"},
  };
  // A valid file cut at every point before its end: each cut is refused.
  const std::string good = with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", four + four);
  for (size_t cut : {size_t(0), size_t(7), size_t(8), size_t(20), good.size() - 9, good.size() - 5, good.size() - 1})
    bad.push_back({good.substr(0, cut), cut < 8 ? "shorter than" : (cut < good.size() - 8 ? "truncated" : "beyond")});
  for (size_t i = 0; i < bad.size(); ++i) {
    INFO("case " << i << ": " << bad[i].expect);
    CHECK_THROWS_WITH(io::parse_safetensors(bad[i].bytes, "bad.safetensors"),
                      Catch::Contains("bad.safetensors") && Catch::Contains(bad[i].expect));
  }
}

TEST_CASE("safetensors: an existing file is replaced atomically, never half-written", "[io][safetensors]") {
  const std::string path = "atomic_test.safetensors";
  std::vector<std::pair<std::string, Tensor<float>>> a = {{"x", Tensor<float>::ones({3})}};
  io::save_safetensors(path, a);
  // Writing into a directory that does not exist fails and leaves the old file alone.
  CHECK_THROWS(io::save_safetensors("no_such_dir/x.safetensors", a));
  CHECK(io::load_safetensors(path).find("x")->to_vector() == std::vector<float>{1, 1, 1});
}
