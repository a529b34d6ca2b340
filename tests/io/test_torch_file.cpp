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
        "holds a pickled __main__.Net object, neither a state dict nor an nn.Module");
  fails(zip({{"m/data.pkl", "\x80\x02X\xff\x00\x00\x00"s + "ab"}}), "truncated");
  fails(zip({{"m/data.pkl", "\x80\x02N0."}}), "stack underflow");
  fails(zip({{"m/data.pkl", "\x80\x02h\x05."}}), "memo key 5 was never stored");
  const std::string good = file(tensor_pickle("w", "FloatStorage", 0, {6}, {1}), floats(six));
  std::string flipped = good;
  flipped[good.find("m/data/0") + 8 + 5] ^= 0x40;  // a byte of the storage's data
  fails(flipped, "member 'm/data/0' is corrupt (CRC mismatch)");
  fails(good.substr(0, good.size() - 30), "not a ZIP archive or truncated");
  fails("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", "(protocol version pickle at byte 15)");
  fails("\x80\x02}.", "not a torch.save file (neither a ZIP archive nor the legacy format)");
  // Told apart from safetensors by its first bytes when loaded from a file.
  io::write_file_atomic("legacy.pt", "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.");
  CHECK_THROWS_WITH(io::load_tensors("legacy.pt"), Catch::Contains("legacy.pt (protocol version pickle"));
  // The fixture, cut short anywhere, is an error, never a crash.
  const std::string real = io::read_file_bytes(kRef + "training_checkpoint.pt");
  for (size_t cut : {size_t(10), real.size() / 3, real.size() - 23})
    CHECK_THROWS_AS(io::parse_torch_file(real.substr(0, cut), "cut.pt"), Error);
}

TEST_CASE("torch file: every layout torch.save writes gives PyTorch's state dict", "[io][torch]") {
  // One model, written by make_torch_files.py in each layout; PyTorch's own
  // torch.load(f).state_dict() gives, for each, small_state_dict.pt's tensors
  // in its order (the two whole-module files with a persistent buffer "kept"
  // first and without the non-persistent "dropped").
  const std::string dir = std::string(SEEMORE_SOURCE_DIR) + "/tests/fuzz/corpus/torch/";
  const auto want = io::load_tensors(dir + "small_state_dict.pt");
  REQUIRE(want.tensors.size() == 42);
  for (const char* name : {"small_legacy.pt", "small_legacy_p4.pt", "small_p1.pt", "small_module_checkpoint.pt",
                           "small_module.pt", "small_module_legacy.pt"}) {
    INFO(name);
    auto got = io::load_tensors(dir + name);
    if (std::string(name).rfind("small_module.pt") == 0 || std::string(name) == "small_module_legacy.pt") {
      REQUIRE(got.tensors.size() == want.tensors.size() + 1);
      CHECK(got.tensors[0].first == "kept");
      CHECK(got.tensors[0].second.to_vector() == std::vector<float>{0.5f, 0.5f});
      got.tensors.erase(got.tensors.begin());
    }
    REQUIRE(got.tensors.size() == want.tensors.size());
    for (size_t i = 0; i < got.tensors.size(); ++i) {
      INFO(want.tensors[i].first);
      CHECK(got.tensors[i].first == want.tensors[i].first);
      CHECK(got.tensors[i].second.shape() == want.tensors[i].second.shape());
      CHECK(got.tensors[i].second.to_vector() == want.tensors[i].second.to_vector());
    }
  }
  // The checkpoint holding the module loads as a model.
  auto a = io::load_checkpoint<float>(dir + "small_module_checkpoint.pt");
  CHECK(a.model->num_parameters() == 1458);
}

namespace {
std::string pid(const std::string& type, const std::string& key, int n) {  // a storage's persistent id, legacy form
  return "(" + str("storage") + "ctorch\n" + type + "\n" + str(key) + str("cpu") + small_int(n) + "NtQ";
}
std::string rebuild(const std::string& storage, int offset, const std::vector<int>& size) {
  std::vector<int> stride(size.size(), 1);
  for (size_t d = size.size() - 1; d-- > 0;) stride[d] = stride[d + 1] * size[d + 1];
  return "ctorch._utils\n_rebuild_tensor_v2\n(" + storage + small_int(offset) + ints(size) + ints(stride) + "\x89}tR";
}
// A legacy torch.save file: its five pickles, then each storage as (int64 count, bytes).
std::string legacy(const std::string& object, const std::vector<std::string>& keys,
                   const std::vector<std::pair<int64_t, std::string>>& storages, bool little = true) {
  std::string out = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."s;
  out += "\x80\x02M\xe9\x03.";
  out += "\x80\x02}(" + str("little_endian") + (little ? "\x88" : "\x89") + "u.";
  out += "\x80\x02" + object + ".";
  out += "\x80\x02](";
  for (auto& k : keys) out += str(k);
  out += "e.";
  for (auto& [n, bytes] : storages) {
    for (int i = 0; i < 8; ++i) out += char(uint64_t(n) >> (8 * i) & 0xff);
    out += bytes;
  }
  return out;
}
// A pickled nn.Module with the given _parameters and _modules items (pickle
// fragments), memoised as `memo` when that is not negative.
std::string module(const std::string& params, const std::string& children, int memo = -1) {
  return "c__main__\nNet\n)\x81" + (memo >= 0 ? "q"s + char(memo) : ""s) + "}(" + str("_parameters") + "}(" + params +
         "u" + str("_buffers") + "}" + str("_non_persistent_buffers_set") + "\x8f" + str("_modules") + "}(" + children +
         "uub";
}
}  // namespace

TEST_CASE("torch file: legacy files, pickled modules and old protocols built by hand", "[io][torch]") {
  const std::vector<float> six = {1, 2, 3, 4, 5, 6};
  auto fails = [&](const std::string& bytes, const std::string& what) {
    CHECK_THROWS_WITH(io::parse_torch_file(bytes, "bad.pt"), Catch::Contains("bad.pt") && Catch::Contains(what));
  };
  // Legacy: two tensors over one storage of six floats, one over a second storage.
  const std::string a = str("a") + rebuild(pid("FloatStorage", "7", 6), 0, {2, 2});
  const std::string b = str("b") + rebuild(pid("FloatStorage", "7", 6), 4, {2});
  const std::string c = str("c") + rebuild(pid("FloatStorage", "9", 2), 0, {2});
  auto t = io::parse_torch_file(legacy("}(" + a + b + c + "u", {"7", "9"}, {{6, floats(six)}, {2, floats({7, 8})}}), "l.pt");
  REQUIRE(t.tensors.size() == 3);
  CHECK(t.tensors[0].second.to_vector() == std::vector<float>{1, 2, 3, 4});
  CHECK(t.tensors[1].second.to_vector() == std::vector<float>{5, 6});
  CHECK(t.tensors[2].second.to_vector() == std::vector<float>{7, 8});
  // An int64 storage outside the state dict: its 16 bytes are skipped by its element size.
  const std::string steps = str("steps") + rebuild(pid("LongStorage", "5", 2), 0, {2});
  t = io::parse_torch_file(legacy("}(" + str("model") + "}(" + a + "u" + steps + "u", {"5", "7"},
                                  {{2, std::string(16, '\xff')}, {6, floats(six)}}),
                           "l.pt");
  REQUIRE(t.tensors.size() == 1);
  CHECK(t.tensors[0].second.to_vector() == std::vector<float>{1, 2, 3, 4});
  fails(legacy("}(" + a + steps + "u", {"5", "7"}, {{2, std::string(16, '\0')}, {6, floats(six)}}),
        "tensor 'steps' is of type torch.LongStorage");
  fails(legacy("}(" + a + c + "u", {"7"}, {{6, floats(six)}}), "storage '9' is not in the file");
  fails(legacy("}(" + a + "u", {"7", "8"}, {{6, floats(six)}, {1, "xxxx"}}), "storage '8' is listed but no tensor names it");
  fails(legacy("}(" + a + "u", {"7", "7"}, {{6, floats(six)}, {0, ""}}), "storage '7' is listed twice");
  fails(legacy("}(" + a + "u", {"7"}, {{7, floats(six)}}), "says 7 elements of 4 bytes, but 24 bytes are left");
  fails(legacy("}(" + a + "u", {"7"}, {{int64_t(1) << 62, floats(six)}}), "bytes are left");
  fails(legacy("}(" + a + "u", {"7"}, {{6, floats(six)}}, false), "written on a big-endian machine");
  // A storage view (PyTorch before 1.0): elements 2 to 4 of storage 7, as its own storage.
  auto viewed = [&](int offset, int size) {
    return "(" + str("storage") + "ctorch\nFloatStorage\n" + str("7") + str("cpu") + small_int(6) + "(" + str("8") +
           small_int(offset) + small_int(size) + "ttQ";
  };
  t = io::parse_torch_file(legacy("}(" + str("v") + rebuild(viewed(2, 3), 0, {3}) + "u", {"7"}, {{6, floats(six)}}), "v.pt");
  CHECK(t.tensors.at(0).second.to_vector() == std::vector<float>{3, 4, 5});
  fails(legacy("}(" + str("v") + rebuild(viewed(2, 3), 1, {3}) + "u", {"7"}, {{6, floats(six)}}), "addresses past the end");
  fails(legacy("}(" + str("v") + rebuild(viewed(4, 3), 0, {1}) + "u", {"7"}, {{6, floats(six)}}),
        "a view of storage '7' reaches past its end");
  fails(legacy("}(" + a + "u", {"7"}, {{6, floats(six)}}).substr(0, 40), "(system info pickle at byte 21)");
  fails(legacy("}(" + a + "u", {"7"}, {{6, floats(six)}}).substr(0, 140), "(saved object pickle at byte");

  // A whole module: its parameters, then each child's under "<name>.", None skipped.
  const std::string leaf = module(str("w") + rebuild(pid("FloatStorage", "0", 6), 0, {3}) + str("bias") + "N", "");
  t = io::parse_torch_file(
      zip({{"m/data.pkl", "\x80\x02" + module(str("scale") + rebuild(pid("FloatStorage", "0", 6), 3, {3}),
                                              str("0") + leaf + str("head") + leaf) + "."},
           {"m/data/0", floats(six)}}),
      "mod.pt");
  REQUIRE(t.tensors.size() == 3);
  CHECK(t.tensors[0].first == "scale");
  CHECK(t.tensors[0].second.to_vector() == std::vector<float>{4, 5, 6});
  CHECK(t.tensors[1].first == "0.w");
  CHECK(t.tensors[2].first == "head.w");
  CHECK(t.tensors[2].second.to_vector() == std::vector<float>{1, 2, 3});
  fails(zip({{"m/data.pkl", "\x80\x02" + module(str("w") + small_int(3), "") + "."}}),
        "'w' in _parameters of a pickled nn.Module is a int, not a tensor");
  // A module inside itself, and modules sharing children over 24 levels
  // (2^24 paths): errors, found in bounded time, not a crash.
  fails(zip({{"m/data.pkl", "\x80\x02" + module("", str("me") + "h\x01", 1) + "."}}), "nested more than 256 deep");
  std::string lattice = module("", "", 0);
  for (int level = 1; level <= 24; ++level)
    lattice = module("", str("a") + lattice + str("b") + "h" + char(level - 1), level);
  fails(zip({{"m/data.pkl", "\x80\x02" + lattice + "."}}), "lists more than 262144 tensors and modules");

  // Many tensors viewing one storage: refused before any of them is allocated.
  const std::string view = "ctorch._utils\n_rebuild_tensor_v2\n(" + pid("FloatStorage", "0", 6) + small_int(0) +
                           "(M\x00\x10t(K\x01t\x89}tR"s;  // 4096 elements
  std::string wide = "}(";
  for (int i = 0; i < 20; ++i) wide += str("t" + std::to_string(i)) + view;
  const std::string storage(4 * 4096, '\0');
  t = io::parse_torch_file(zip({{"m/data.pkl", "\x80\x02" + wide + "u."}, {"m/data/0", storage}}), "w.pt");
  CHECK(t.tensors.size() == 20);
  for (int i = 20; i < 300; ++i) wide += str("t" + std::to_string(i)) + view;
  fails(zip({{"m/data.pkl", "\x80\x02" + wide + "u."}, {"m/data/0", storage}}),
        "its tensors address 1228800 elements in all, more than 16 times the 4096 its storages hold");

  // Protocol 1's text integers and booleans, protocol 4's sets.
  t = io::parse_torch_file(
      zip({{"m/data.pkl", "\x80\x02}(" + str("model") + "}(" + str("w") + rebuild(pid("FloatStorage", "0", 6), 0, {6}) + "u" + str("n") +
                              "I01\n" + str("m") + "L-12345678901L\n" + str("s") + "\x8f(K\x01\x90" + str("f") +
                              "(K\x02\x91u."},
           {"m/data/0", floats(six)}}),
      "p.pt");
  CHECK(t.tensors.size() == 1);
  fails(zip({{"m/data.pkl", "\x80\x02I12x\n."}}), "integer '12x' is not decimal");
  fails(zip({{"m/data.pkl", "\x80\x02L99999999999999999999L\n."}}), "integer 99999999999999999999 is too large");
}
