// seemore/data/dataset.hpp — image/caption datasets: the reference's CSV
// (base64 images), JSONL manifests, decoding with a per-image cache, the
// reference's row duplication and ordered train/val split, and batches in
// each preset's convention.
#pragma once

#include <seemore/data/base64.hpp>
#include <seemore/data/csv.hpp>
#include <seemore/data/image.hpp>
#include <seemore/data/tokenizer.hpp>
#include <seemore/nn/vlm_config.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <memory>

namespace seemore::data {

// One row of a data file, before decoding.
struct RawSample {
  std::string caption;
  std::string where;        // "inputs.csv row 3" — for every error about this row
  std::string image_key;    // identical keys share one decoded image
  std::string image_path;   // JSONL: the file to read
  std::shared_ptr<const std::string> image_bytes;  // CSV: decoded base64 bytes
};

// The reference's CSV: header with columns b64string_images and caption, in
// any order; other columns are ignored. Rows are numbered from 1 after the header.
// `path` names the file in messages.
inline std::vector<RawSample> parse_csv_samples(const std::string& text, const std::string& path) {
  auto records = parse_csv(text, path);
  SEEMORE_CHECK(!records.empty(), path, ": empty file (expected a header with b64string_images,caption)");
  const auto& header = records[0].fields;
  int img_col = -1, cap_col = -1;
  for (size_t i = 0; i < header.size(); ++i) {
    std::string h = header[i];
    while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.pop_back();
    while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.erase(h.begin());
    if (h == "b64string_images") img_col = int(i);
    if (h == "caption") cap_col = int(i);
  }
  SEEMORE_CHECK(img_col >= 0 && cap_col >= 0, path, ": header must have columns 'b64string_images' and 'caption', got '",
                [&] {
                  std::string s;
                  for (size_t i = 0; i < header.size(); ++i) s += (i ? "," : "") + header[i].substr(0, 40);
                  return s;
                }(),
                "'");
  std::vector<RawSample> out;
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& f = records[r].fields;
    const std::string where = path + " row " + std::to_string(r) + " (line " + std::to_string(records[r].line) + ")";
    SEEMORE_CHECK(f.size() == header.size(), where, ": ", f.size(), " fields, the header has ", header.size());
    RawSample s;
    s.caption = f[size_t(cap_col)];
    s.where = where;
    s.image_bytes = std::make_shared<const std::string>(base64_decode(f[size_t(img_col)], where + " field 'b64string_images'"));
    s.image_key = "csv:" + f[size_t(img_col)];
    out.push_back(std::move(s));
  }
  SEEMORE_CHECK(!out.empty(), path, ": no data rows after the header");
  return out;
}

inline std::vector<RawSample> read_csv_samples(const std::string& path) {
  return parse_csv_samples(io::read_file_bytes(path, uint64_t(4) << 30), path);
}

// JSONL manifest: one {"image": path, "caption": text} per line; relative
// image paths are relative to the manifest's directory. Blank lines are skipped.
// `dir` ("" or ending in '/') anchors relative paths; `path` names the file in messages.
inline std::vector<RawSample> parse_jsonl_samples(const std::string& text, const std::string& dir,
                                                  const std::string& path) {
  std::vector<RawSample> out;
  size_t line = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string l = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (l.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + " line " + std::to_string(line);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(l);
    } catch (const nlohmann::json::exception& e) {
      detail::fail(where, ": not valid JSON (", e.what(), ")");
    }
    SEEMORE_CHECK(j.is_object(), where, ": expected an object {\"image\": ..., \"caption\": ...}");
    SEEMORE_CHECK(j.contains("image") && j["image"].is_string(), where, ": field 'image' must be a string");
    SEEMORE_CHECK(j.contains("caption") && j["caption"].is_string(), where, ": field 'caption' must be a string");
    RawSample s;
    std::string img = j["image"].get<std::string>();
    SEEMORE_CHECK(!img.empty(), where, ": field 'image' is empty");
    s.image_path = img[0] == '/' ? img : dir + img;
    s.image_key = "file:" + s.image_path;
    s.caption = j["caption"].get<std::string>();
    s.where = where;
    out.push_back(std::move(s));
  }
  SEEMORE_CHECK(!out.empty(), path, ": no samples");
  return out;
}

inline std::vector<RawSample> read_jsonl_samples(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  return parse_jsonl_samples(io::read_file_bytes(path, uint64_t(1) << 32), dir, path);
}

// By extension: .csv → reference CSV, .jsonl/.json → manifest.
inline std::vector<RawSample> read_samples(const std::string& path) {
  SEEMORE_CHECK(!io::is_directory(path), path, ": is a directory, expected a .csv or .jsonl file");
  auto ends = [&](const char* s) {
    const std::string e(s);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".csv")) return read_csv_samples(path);
  if (ends(".jsonl") || ends(".json")) return read_jsonl_samples(path);
  detail::fail(path, ": unknown data format (expected .csv or .jsonl)");
}

// A batch in the model's convention for the preset.
template <class T>
struct Batch {
  Tensor<T> images;         // [B, 3, S, S]
  Tensor<int32_t> tokens;   // [B, L]
  Tensor<int32_t> targets;  // [B, L] (reference convention) or [B, L+1] (image predicts first)
};

// Decoded, tokenised samples. Every distinct image is decoded and resized once.
template <class T>
class CaptionDataset {
 public:
  struct Item {
    int64_t image;  // row in images_
    std::vector<int32_t> ids;
    std::string caption, where;
  };

  CaptionDataset(const std::vector<RawSample>& raw, const nn::VLMConfig& cfg, const CharTokenizer& vocab,
                 const ImageLimits& lim = {})
      : cfg_(cfg), vocab_(vocab) {
    SEEMORE_CHECK(!raw.empty(), "dataset: no samples");
    std::map<std::string, int64_t> index;
    std::vector<const RawSample*> firsts;
    for (auto& r : raw) {
      auto [it, fresh] = index.emplace(r.image_key, int64_t(firsts.size()));
      if (fresh) firsts.push_back(&r);
      Item item{it->second, vocab.encode(r.caption, r.where + " caption"), r.caption, r.where};
      SEEMORE_CHECK(!item.ids.empty(), r.where, ": empty caption");
      const int64_t positions = int64_t(item.ids.size()) + cfg.image_prefix_len() + (cfg.image_predicts_first ? 1 : 0);
      SEEMORE_CHECK(positions <= cfg.block_size, r.where, ": caption of ", item.ids.size(),
                    " characters is longer than the model's ", cfg.block_size, " positions allow (",
                    cfg.image_prefix_len(), " of them for the image)");
      items_.push_back(std::move(item));
    }
    const int64_t S = cfg.img_size;
    images_ = Tensor<T>::empty({int64_t(firsts.size()), 3, S, S});
    for (size_t i = 0; i < firsts.size(); ++i) {
      const RawSample& r = *firsts[i];
      Image img = r.image_bytes ? decode_image(*r.image_bytes, r.where + " image", lim) : load_image(r.image_path, lim);
      normalize_into(resize_bilinear(img, S, S), images_.data() + int64_t(i) * 3 * S * S);
    }
  }

  int64_t size() const { return int64_t(items_.size()); }
  int64_t num_images() const { return images_.size(0); }
  const Item& item(int64_t i) const { return items_[size_t(i)]; }
  const std::vector<Item>& items() const { return items_; }
  const Tensor<T>& images() const { return images_; }
  const CharTokenizer& vocab() const { return vocab_; }

  // The reference duplicates its rows (concat([df]*30)): the same items, repeated.
  void repeat(int64_t n) {
    SEEMORE_CHECK(n >= 1, "repeat: must be >= 1, got ", n);
    const auto one = items_;
    for (int64_t k = 1; k < n; ++k) items_.insert(items_.end(), one.begin(), one.end());
  }
  // Ordered split, as the reference: the first ⌊n·(1−f)⌋ items train, the rest validate.
  std::pair<std::vector<int64_t>, std::vector<int64_t>> split(double val_fraction) const {
    SEEMORE_CHECK(val_fraction >= 0 && val_fraction < 1, "val-fraction must be in [0, 1), got ", val_fraction);
    const int64_t n = size(), ntrain = int64_t(double(n) * (1.0 - val_fraction));
    std::vector<int64_t> tr, va;
    for (int64_t i = 0; i < n; ++i) (i < ntrain ? tr : va).push_back(i);
    return {tr, va};
  }

  // The longest caption (in tokens) among the given items: a batch's padded length.
  int64_t max_length(const std::vector<int64_t>& which) const {
    size_t L = 0;
    for (auto i : which) {
      SEEMORE_CHECK(i >= 0 && i < size(), "batch: item ", i, " outside the dataset of ", size());
      L = std::max(L, items_[size_t(i)].ids.size());
    }
    return int64_t(L);
  }

  // Images, padded tokens and targets for the given items, padded to their
  // longest caption or to `length` when that is longer: a slice of a larger
  // batch passes the whole batch's max_length(), so that its rows are exactly
  // the whole batch's rows. images = false: text only (images undefined).
  Batch<T> batch(const std::vector<int64_t>& which, int64_t length = 0, bool images = true) const {
    const int64_t B = int64_t(which.size()), S = cfg_.img_size, px = 3 * S * S;
    SEEMORE_CHECK(B > 0, "batch: empty");
    const size_t L = size_t(std::max(max_length(which), length));
    const int32_t pad = vocab_.pad_id();
    Batch<T> b;
    if (images) b.images = Tensor<T>::empty({B, 3, S, S});
    std::vector<int32_t> tok(size_t(B) * L, pad), tgt;
    const bool full = cfg_.image_predicts_first;
    const size_t TT = full ? L + 1 : L;
    tgt.assign(size_t(B) * TT, pad);
    for (int64_t r = 0; r < B; ++r) {
      const Item& it = items_[size_t(which[size_t(r)])];
      if (images)
        std::copy(images_.data() + it.image * px, images_.data() + (it.image + 1) * px, b.images.data() + r * px);
      std::copy(it.ids.begin(), it.ids.end(), tok.begin() + long(size_t(r) * L));
      int32_t* t = tgt.data() + size_t(r) * TT;
      if (full) {  // position p predicts character p; <eos> after the last
        std::copy(it.ids.begin(), it.ids.end(), t);
        t[it.ids.size()] = vocab_.eos_id() >= 0 ? vocab_.eos_id() : pad;
      } else {     // the reference: the text shifted left by one, <pad> appended
        for (size_t p = 0; p + 1 < L; ++p) t[p] = tok[size_t(r) * L + p + 1];
      }
    }
    b.tokens = Tensor<int32_t>::from_vector({B, int64_t(L)}, tok);
    b.targets = Tensor<int32_t>::from_vector({B, int64_t(TT)}, tgt);
    return b;
  }

 private:
  nn::VLMConfig cfg_;
  CharTokenizer vocab_;
  std::vector<Item> items_;
  Tensor<T> images_;
};

}  // namespace seemore::data
