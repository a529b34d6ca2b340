// torch.save files: the fixtures PyTorch wrote (tests/reference/make_torch_files.py)
// and archives built here byte by byte, for what PyTorch would never write.
#include <catch2/catch.hpp>
#include <seemore/vlm.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

using namespace seemore;
using namespace std::string_literals;  // pickles hold NUL bytes

namespace {
const std::string kRef = std::string(SEEMORE_SOURCE_DIR) + "/tests/reference/";

// A ZIP of stored members, as torch.save writes it.
std::string zip(const std::vector<std::pair<std::string, std::string>>& members) {
  auto le = [](std::string& s, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s += char(v >> (8 * i) & 0xff);
  };
  std::string out, dir;
  for (auto& [name, data] : members) {
    const uint32_t crc = io::ZipReader::crc32(data);
    const uint64_t at = out.size();
    out += "PK\x03\x04";
    le(out, 20, 2), le(out, 0, 2), le(out, 0, 2), le(out, 0, 4), le(out, crc, 4);
    le(out, data.size(), 4), le(out, data.size(), 4), le(out, name.size(), 2), le(out, 0, 2);
    out += name + data;
    dir += "PK\x01\x02";
    le(dir, 20, 2), le(dir, 20, 2), le(dir, 0, 2), le(dir, 0, 2), le(dir, 0, 4), le(dir, crc, 4);
    le(dir, data.size(), 4), le(dir, data.size(), 4), le(dir, name.size(), 2), le(dir, 0, 2), le(dir, 0, 2);
    le(dir, 0, 2), le(dir, 0, 2), le(dir, 0, 4), le(dir, at, 4);
    dir += name;
  }
  const uint64_t dir_at = out.size();
  out += dir + "PK\x05\x06";
  le(out, 0, 4), le(out, members.size(), 2), le(out, members.size(), 2), le(out, dir.size(), 4);
  le(out, dir_at, 4), le(out, 0, 2);
  return out;
}
std::string str(const std::string& s) {  // BINUNICODE
  std::string o = "X";
  for (int i = 0; i < 4; ++i) o += char(s.size() >> (8 * i) & 0xff);
  return o + s;
}
std::string small_int(int v) { return std::string("K") + char(v); }  // BININT1
std::string ints(const std::vector<int>& v) {
  std::string o = "(";
  for (int x : v) o += small_int(x);
  return o + "t";
}
// pickle of {name: tensor} with the tensor given as _rebuild_tensor_v2 would get it.
std::string tensor_pickle(const std::string& name, const std::string& storage_type, int offset,
                          const std::vector<int>& size, const std::vector<int>& stride) {
  return "\x80\x02}(" + str(name) + "ctorch._utils\n_rebuild_tensor_v2\n((" + str("storage") + "ctorch\n" +
         storage_type + "\n" + str("0") + str("cpu") + small_int(6) + "tQ" + small_int(offset) + ints(size) +
         ints(stride) + "\x89" + "ccollections\nOrderedDict\n)RtRu.";
}
std::string floats(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }
// Elements of `a` that are not `b` rounded to float16: more than half a unit
// in the last of its 11 significant bits off (2^-11 relative), or, below
// float16's normal range, more than half its subnormal spacing (2^-25).
int64_t not_half_of(const Tensor<float>& a, const Tensor<float>& b) {
  auto x = a.to_vector(), y = b.to_vector();
  REQUIRE(x.size() == y.size());
  int64_t bad = 0;
  for (size_t i = 0; i < x.size(); ++i) bad += std::abs(x[i] - y[i]) > std::ldexp(std::abs(y[i]), -11) + std::ldexp(1.0f, -25);
  return bad;
}
// Each tensor of `st` beside the reference file's tensor of that name, whose shape it must have.
template <class Check>
void against_reference(const io::SafeTensors& st, Check&& check) {
  const auto want = io::load_safetensors(kRef + "reference_tiny_seemore.safetensors").as_map();
  REQUIRE(st.tensors.size() == want.size());
  for (auto& [name, t] : st.tensors) {
    INFO(name);
    REQUIRE(want.count(name));
    REQUIRE(t.shape() == want.at(name).shape());
    check(t, want.at(name));
  }
}
}  // namespace

TEST_CASE("torch file: PyTorch's state dict loads bit for bit", "[io][torch]") {
  const auto st = io::load_tensors(kRef + "reference_tiny_seemore.pt");
  against_reference(st, [](const Tensor<float>& t, const Tensor<float>& want) { CHECK(t.to_vector() == want.to_vector()); });
  // In the state dict's order, as PyTorch wrote it.
  CHECK(st.tensors.front().first == "vision_encoder.cls_token");
  CHECK(st.tensors.back().first == "decoder.lm_head.bias");
  // As a checkpoint: sizes read from the tensors, the same model as the safetensors file.
  auto a = io::load_checkpoint<float>(kRef + "reference_tiny_seemore.pt");
  auto b = io::load_checkpoint<float>(kRef + "reference_tiny_seemore.safetensors");
  CHECK(a.model->config().to_json() == b.model->config().to_json());
  a.model->eval(), b.model->eval();
  Generator g(3);
  auto img = Tensor<float>::randn({1, 3, a.model->config().img_size, a.model->config().img_size}, g);
  auto tok = Tensor<int32_t>::from_vector({1, 4}, {1, 2, 3, 4});
  CHECK(a.model->forward(img, tok).logits.to_vector() == b.model->forward(img, tok).logits.to_vector());
}

TEST_CASE("torch file: a training checkpoint's float16 state dict, strided and offset", "[io][torch]") {
  against_reference(io::load_tensors(kRef + "training_checkpoint.pt"),
                    [](const Tensor<float>& t, const Tensor<float>& want) { CHECK(not_half_of(t, want) == 0); });
}

TEST_CASE("torch file: hand-made archives, and everything wrong with them named", "[io][torch]") {
  const std::vector<float> six = {1, 2, 3, 4, 5, 6};
  auto file = [&](const std::string& pkl, const std::string& data) {
    return zip({{"m/data.pkl", pkl}, {"m/data/0", data}, {"m/version", "3\n"}});
  };
  // A 2×3 tensor over six floats; then its transpose (strides 1, 3) and a view at offset 2.
  auto t = io::parse_torch_file(file(tensor_pickle("w", "FloatStorage", 0, {2, 3}, {3, 1}), floats(six)), "a.pt");
  REQUIRE(t.tensors.size() == 1);
  CHECK(t.tensors[0].first == "w");
  CHECK(t.tensors[0].second.shape() == Shape{2, 3});
  CHECK(t.tensors[0].second.to_vector() == six);
  t = io::parse_torch_file(file(tensor_pickle("w", "FloatStorage", 0, {3, 2}, {1, 3}), floats(six)), "b.pt");
  CHECK(t.tensors[0].second.to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
  t = io::parse_torch_file(file(tensor_pickle("w", "FloatStorage", 2, {2, 2}, {2, 1}), floats(six)), "c.pt");
  CHECK(t.tensors[0].second.to_vector() == std::vector<float>{3, 4, 5, 6});
  // bfloat16: the high halves of the floats.
  std::string bf;
  for (float f : six) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    bf += char(u >> 16 & 0xff), bf += char(u >> 24);
  }
  t = io::parse_torch_file(file(tensor_pickle("w", "BFloat16Storage", 0, {6}, {1}), bf), "d.pt");
  CHECK(t.tensors[0].second.to_vector() == six);

  auto fails = [&](const std::string& bytes, const std::string& what) {
    CHECK_THROWS_WITH(io::parse_torch_file(bytes, "bad.pt"), Catch::Contains("bad.pt") && Catch::Contains(what));
  };
  fails(file(tensor_pickle("w", "FloatStorage", 1, {2, 3}, {3, 1}), floats(six)), "addresses past the end");
  fails(file(tensor_pickle("w", "FloatStorage", 0, {2, 4}, {3, 1}), floats(six)), "addresses past the end");
  fails(file(tensor_pickle("w", "FloatStorage", 0, {7}, {0}), floats(six)), "addresses past the end");
  fails(file(tensor_pickle("w", "LongStorage", 0, {3}, {1}), floats(six)),
        "tensor 'w' is of type torch.LongStorage");
  fails(zip({{"m/data.pkl", tensor_pickle("w", "FloatStorage", 0, {6}, {1})}}), "archive has no member 'm/data/0'");
  fails(zip({{"m/other", "x"}}), "without a data.pkl");
  fails(zip({{"m/data.pkl", "\x80\x02]q\x00h\x00\x61."s}}), "holds a list, not a state dict");  // a list inside itself
  fails(zip({{"m/data.pkl", "\x80\x02}" + str("step") + small_int(3) + "s."}}), "holds a dict with keys 'step'");
  fails(zip({{"m/data.pkl", "\x80\x02(i__builtin__\nobject\n."}}), "opcode 0x69 is not supported");
  fails(zip({{"m/data.pkl", "\x80\x02" "c__main__\nNet\n)\x81}b."}}),
        "holds a pickled __main__.Net object (torch.save(model)?), not a state dict");
  fails(zip({{"m/data.pkl", "\x80\x02X\xff\x00\x00\x00"s + "ab"}}), "truncated");
  fails(zip({{"m/data.pkl", "\x80\x02N0."}}), "stack underflow");
  fails(zip({{"m/data.pkl", "\x80\x02h\x05."}}), "memo key 5 was never stored");
  const std::string good = file(tensor_pickle("w", "FloatStorage", 0, {6}, {1}), floats(six));
  std::string flipped = good;
  flipped[good.find("m/data/0") + 8 + 5] ^= 0x40;  // a byte of the storage's data
  fails(flipped, "member 'm/data/0' is corrupt (CRC mismatch)");
  fails(good.substr(0, good.size() - 30), "not a ZIP archive or truncated");
  fails("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", "in the format before PyTorch 1.6");
  fails("\x80\x02}.", "not a torch.save ZIP archive");
  // Told apart from safetensors by its first bytes when loaded from a file.
  io::write_file_atomic("legacy.pt", "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.");
  CHECK_THROWS_WITH(io::load_tensors("legacy.pt"), Catch::Contains("legacy.pt: a torch.save file in the format before"));
  // The fixture, cut short anywhere, is an error, never a crash.
  const std::string real = io::read_file_bytes(kRef + "training_checkpoint.pt");
  for (size_t cut : {size_t(10), real.size() / 3, real.size() - 23})
    CHECK_THROWS_AS(io::parse_torch_file(real.substr(0, cut), "cut.pt"), Error);
}
