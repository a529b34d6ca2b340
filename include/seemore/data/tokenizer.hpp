// seemore/data/tokenizer.hpp — the character-level tokenizer.
//
// Ids 0..n−1 are the characters in order, then <pad>, then (standard preset)
// <eos>. The reference vocabulary is the sorted character set of
// tiny-shakespeare: newline, space, !$&',-.3:;?, A–Z, a–z (65 characters).
#pragma once

#include <seemore/config.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace seemore::data {

inline const std::string& reference_characters() {
  static const std::string chars = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  return chars;
}

class CharTokenizer {
 public:
  CharTokenizer() : CharTokenizer(reference_characters(), false) {}
  // chars: distinct bytes; pad = chars.size(), eos = chars.size() + 1 when with_eos.
  CharTokenizer(std::string chars, bool with_eos) : chars_(std::move(chars)), eos_(with_eos) {
    index_.fill(-1);
    for (size_t i = 0; i < chars_.size(); ++i) {
      const auto c = static_cast<unsigned char>(chars_[i]);
      SEEMORE_CHECK(index_[c] < 0, "tokenizer: character '", printable(chars_[i]), "' listed twice");
      index_[c] = int32_t(i);
    }
  }
  // The sorted distinct characters of some texts (a vocabulary built from captions).
  static CharTokenizer from_texts(const std::vector<std::string>& texts, bool with_eos) {
    std::set<unsigned char> s;
    for (auto& t : texts) s.insert(t.begin(), t.end());
    return CharTokenizer(std::string(s.begin(), s.end()), with_eos);
  }

  int32_t pad_id() const { return int32_t(chars_.size()); }
  int32_t eos_id() const { return eos_ ? int32_t(chars_.size()) + 1 : -1; }
  int64_t vocab_size() const { return int64_t(chars_.size()) + 1 + (eos_ ? 1 : 0); }
  const std::string& characters() const { return chars_; }
  bool has(char c) const { return index_[static_cast<unsigned char>(c)] >= 0; }

  // `where` names the text in errors ("inputs.csv row 12").
  std::vector<int32_t> encode(const std::string& text, const std::string& where = "text") const {
    std::vector<int32_t> ids;
    ids.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      const int32_t id = index_[static_cast<unsigned char>(text[i])];
      SEEMORE_CHECK(id >= 0, where, ": character '", printable(text[i]), "' at position ", i,
                    " is not in the vocabulary");
      ids.push_back(id);
    }
    return ids;
  }
  // Special tokens decode to nothing.
  std::string decode(const std::vector<int32_t>& ids) const {
    std::string s;
    for (auto id : ids)
      if (id >= 0 && id < int32_t(chars_.size())) s += chars_[size_t(id)];
    return s;
  }

  nlohmann::json to_json() const { return {{"characters", chars_}, {"eos", eos_}}; }
  static CharTokenizer from_json(const nlohmann::json& j, const std::string& where = "vocabulary") {
    SEEMORE_CHECK(j.is_object() && j.contains("characters") && j["characters"].is_string(), where,
                  ": field 'characters' must be a string");
    SEEMORE_CHECK(!j.contains("eos") || j["eos"].is_boolean(), where, ": field 'eos' must be a boolean");
    return CharTokenizer(j["characters"].get<std::string>(), j.value("eos", false));
  }

  static std::string printable(char c) {
    if (c == '\n') return "\\n";
    if (c == '\t') return "\\t";
    const auto u = static_cast<unsigned char>(c);
    if (u < 32 || u >= 127) {
      const char* hex = "0123456789abcdef";
      return std::string("\\x") + hex[u >> 4] + hex[u & 15];
    }
    return std::string(1, c);
  }

 private:
  std::string chars_;
  bool eos_ = false;
  std::array<int32_t, 256> index_{};
};

}  // namespace seemore::data
