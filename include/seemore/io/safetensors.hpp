// seemore/io/safetensors.hpp — the safetensors format: an 8-byte little-endian
// header length N, N bytes of JSON ({name: {dtype, shape, data_offsets}, and
// an optional "__metadata__" of string → string}), then the raw data.
//
// Writing: F32, tensors in the given order, the header padded with spaces to a
// multiple of 8, atomically (io/atomic_file.hpp). Reading: F32, F16, BF16 and
// F64 (converted to float), validated before any tensor is built: header length,
// JSON object, known dtypes, shape × dtype size == byte range, ranges
// contiguous and covering the data exactly, no overflow, no duplicate names.
#pragma once

#include <seemore/io/atomic_file.hpp>
#include <seemore/io/endian.hpp>
#include <seemore/io/file.hpp>
#include <seemore/tensor.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace seemore::io {

struct SafeTensors {
  std::vector<std::pair<std::string, Tensor<float>>> tensors;  // in file order
  std::map<std::string, std::string> metadata;

  const Tensor<float>* find(const std::string& name) const {
    for (auto& [n, t] : tensors)
      if (n == name) return &t;
    return nullptr;
  }
  std::map<std::string, Tensor<float>> as_map() const { return {tensors.begin(), tensors.end()}; }
};

namespace detail_st {
inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      uint32_t m = man;
      do {
        ++e;
        m <<= 1;
      } while (!(m & 0x400));
      bits = sign | (uint32_t(127 - 15 - e) << 23) | ((m & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
// IEEE rounding to float without the undefined behaviour of converting an
// out-of-range double: past FLT_MAX by half a unit or more it is infinity.
inline float double_to_float(double d) {
  const double max = std::numeric_limits<float>::max(), tie = max + std::ldexp(1.0, 103);
  if (std::isnan(d) || std::abs(d) <= max) return float(d);
  return std::abs(d) < tie ? std::copysign(float(max), float(d > 0 ? 1 : -1))
                           : std::copysign(std::numeric_limits<float>::infinity(), float(d > 0 ? 1 : -1));
}
inline float bf16_to_float(uint16_t b) {
  const uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
}  // namespace detail_st

// The floating-point element types checkpoint files store (safetensors and
// torch.save alike), all read as float.
enum class FloatType { F32, F16, BF16, F64 };
inline int size_of(FloatType t) { return t == FloatType::F64 ? 8 : t == FloatType::F32 ? 4 : 2; }
// One little-endian element at p.
inline float load_float(FloatType t, const char* p) {
  switch (t) {
    case FloatType::F32: {
      const uint32_t bits = uint32_t(load_le(p, 4));
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case FloatType::F16: return detail_st::half_to_float(uint16_t(load_le(p, 2)));
    case FloatType::BF16: return detail_st::bf16_to_float(uint16_t(load_le(p, 2)));
    case FloatType::F64: {
      const uint64_t bits = load_le(p, 8);
      double d;
      std::memcpy(&d, &bits, 8);
      return detail_st::double_to_float(d);
    }
  }
  return 0;
}
// n consecutive elements from src into dst.
inline void load_floats(FloatType t, const char* src, int64_t n, float* dst) {
  if (t == FloatType::F32 && n > 0) return void(std::memcpy(dst, src, size_t(n) * 4));  // a little-endian host
  const int size = size_of(t);
  for (int64_t i = 0; i < n; ++i) dst[i] = load_float(t, src + i * size);
}

// Parses safetensors bytes; `where` (the file name) starts every error message.
inline SafeTensors parse_safetensors(const std::string& bytes, const std::string& where) {
  auto fail = [&](auto&&... parts) { seemore::detail::fail(where, ": ", parts...); };
  if (bytes.size() < 8) fail("truncated: ", bytes.size(), " bytes, shorter than the 8-byte header length");
  const uint64_t n = load_le(bytes.data(), 8);
  if (n < 2) fail("header length ", n, " is too small");
  if (n > 100000000) fail("header length ", n, " exceeds 100 MB");
  if (n > bytes.size() - 8) fail("truncated: header length ", n, " but only ", bytes.size() - 8, " bytes follow");
  const std::string header = bytes.substr(8, size_t(n));
  // Duplicate names are an error (JSON parsers keep the last silently).
  std::set<std::string> seen;
  std::string dup;
  nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    if (depth == 1 && ev == nlohmann::json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second &&
        dup.empty())
      dup = parsed.get<std::string>();
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header, cb);
  } catch (const nlohmann::json::exception& e) {
    fail("header is not valid JSON: ", e.what());
  }
  if (!dup.empty()) fail("tensor '", dup, "' appears twice in the header");
  if (!j.is_object()) fail("header must be a JSON object, got ", j.type_name());

  const uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;
  SafeTensors st;
  struct Entry {
    std::string name;
    uint64_t begin, end;
    std::string dtype;
    Shape shape;
  };
  std::vector<Entry> entries;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail("__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail("__metadata__ value '", m.key(), "' must be a string");
        st.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      fail("tensor '", name, "' needs dtype, shape and data_offsets");
    if (!v["dtype"].is_string()) fail("tensor '", name, "': dtype must be a string");
    Entry e{name, 0, 0, v["dtype"].get<std::string>(), {}};
    uint64_t esize = 0;
    if (e.dtype == "F32") esize = 4;
    else if (e.dtype == "F16" || e.dtype == "BF16") esize = 2;
    else if (e.dtype == "F64") esize = 8;
    else if (e.dtype == "I64" || e.dtype == "U64" || e.dtype == "I32" || e.dtype == "U32" ||
             e.dtype == "I16" || e.dtype == "U16" || e.dtype == "I8" || e.dtype == "U8" || e.dtype == "BOOL" ||
             e.dtype == "F8_E4M3" || e.dtype == "F8_E5M2")
      fail("tensor '", name, "': dtype ", e.dtype, " is not supported (F32, F16, BF16, F64)");
    else
      fail("tensor '", name, "': unknown dtype '", e.dtype, "'");
    const auto& shape = v["shape"];
    if (!shape.is_array()) fail("tensor '", name, "': shape must be an array");
    uint64_t count = 1;
    for (auto& d : shape) {
      if (!d.is_number_unsigned()) fail("tensor '", name, "': shape entries must be non-negative integers");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > uint64_t(std::numeric_limits<int64_t>::max()) ||
          (dim != 0 && count > std::numeric_limits<uint64_t>::max() / esize / dim))
        fail("tensor '", name, "': shape overflows");
      count *= dim;
      e.shape.push_back(int64_t(dim));
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail("tensor '", name, "': data_offsets must be two non-negative integers");
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.end < e.begin) fail("tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] end before they begin");
    if (e.end > data_size) fail("tensor '", name, "': data_offsets end ", e.end, " beyond the ", data_size, " data bytes");
    if (e.end - e.begin != count * esize)
      fail("tensor '", name, "': ", e.end - e.begin, " bytes for shape ", to_string(e.shape), " of ", e.dtype,
           " (expected ", count * esize, ")");
    entries.push_back(std::move(e));
  }
  std::vector<const Entry*> by_offset;
  for (auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin || (a->begin == b->begin && a->end < b->end); });
  uint64_t at = 0;
  for (auto* e : by_offset) {
    if (e->begin != at)
      fail("tensor '", e->name, "' starts at byte ", e->begin, " but the previous one ends at ", at,
           e->begin < at ? " (overlap)" : " (gap)");
    at = e->end;
  }
  if (at != data_size) fail("the tensors cover ", at, " of ", data_size, " data bytes");

  for (auto& e : entries) {
    auto t = Tensor<float>::empty(e.shape);
    const FloatType type = e.dtype == "F32"   ? FloatType::F32
                           : e.dtype == "F16" ? FloatType::F16
                           : e.dtype == "BF16" ? FloatType::BF16
                                               : FloatType::F64;
    load_floats(type, data + e.begin, t.numel(), t.data());
    st.tensors.push_back({e.name, t});
  }
  return st;
}

inline SafeTensors load_safetensors(const std::string& path) { return parse_safetensors(read_file_bytes(path), path); }

// Serialises F32 tensors (any order; names must be distinct) with metadata.
template <class T>
std::string serialize_safetensors(const std::vector<std::pair<std::string, Tensor<T>>>& tensors,
                                  const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t at = 0;
  std::set<std::string> names;
  for (auto& [name, t] : tensors) {
    SEEMORE_CHECK(name != "__metadata__" && names.insert(name).second, "safetensors: duplicate or reserved name '",
                  name, "'");
    const uint64_t bytes = uint64_t(t.numel()) * 4;
    h[name] = {{"dtype", "F32"}, {"shape", t.shape()}, {"data_offsets", {at, at + bytes}}};
    at += bytes;
  }
  std::string header = h.dump();
  while ((8 + header.size()) % 8) header += ' ';
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
  out += header;
  out.reserve(out.size() + at);
  for (auto& [name, t] : tensors) {
    auto v = t.to_vector();
    for (auto x : v) {
      const float f = float(x);
      out.append(reinterpret_cast<const char*>(&f), 4);
    }
  }
  return out;
}

template <class T>
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor<T>>>& tensors,
                      const std::map<std::string, std::string>& metadata = {}) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

}  // namespace seemore::io
