// seemore/nn/vlm_config.hpp — VLMConfig: every hyperparameter of the model,
// the two presets, and strict JSON reading/writing.
//
// Presets:
//   seemore  — the PyTorch reference exactly, quirks included: attention scaled
//              by the model width C^-0.5; the FFN residual added to the
//              normalised x; the image position predicts nothing and pad
//              targets count in the loss; vocabulary = 65 characters + <pad>.
//   standard — the quirks fixed: head-size scaling, pre-LN residual, the image
//              position predicts the first character, an <eos> token ends a
//              caption, pad targets are ignored.
#pragma once

#include <seemore/config.hpp>
#include <seemore/io/file.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>

namespace seemore::nn {

struct VLMConfig {
  std::string preset = "seemore";
  // vision
  int64_t img_size = 96;
  int64_t patch_size = 16;
  int64_t in_channels = 3;
  int64_t image_embed_dim = 512;
  int64_t num_blks = 3;
  // text
  int64_t n_embd = 128;
  int64_t n_layer = 8;
  int64_t n_head = 8;
  int64_t vocab_size = 66;
  int64_t block_size = 1000;  // rows of the position table: longest decoder sequence
  double dropout = 0.1;
  // tokens
  int32_t pad_id = 65;
  int32_t eos_id = -1;  // -1: none
  // what the decoder sees of the image: "cls" — one token, the ViT's CLS
  // output (the reference); "patches" — every patch output of the ViT's last
  // block, after its final LayerNorm, as a prefix of tokens (LLaVA's design),
  // optionally averaged over patch_pool × patch_pool squares of the grid first.
  std::string image_tokens = "cls";
  int64_t patch_pool = 1;
  // quirks (true = the reference's behaviour)
  bool attn_scale_by_width = true;
  bool post_ln_ffn_residual = true;
  bool image_predicts_first = false;
  bool pad_counts_in_loss = true;

  static VLMConfig seemore() { return VLMConfig{}; }
  static VLMConfig standard() {
    VLMConfig c;
    c.preset = "standard";
    c.vocab_size = 67;  // 65 characters, <pad> = 65, <eos> = 66
    c.eos_id = 66;
    c.attn_scale_by_width = false;
    c.post_ln_ffn_residual = false;
    c.image_predicts_first = true;
    c.pad_counts_in_loss = false;
    return c;
  }
  static VLMConfig from_preset(const std::string& name) {
    if (name == "seemore") return seemore();
    if (name == "standard") return standard();
    detail::fail("unknown preset '", name, "' (expected seemore or standard)");
  }

  int64_t num_patches() const { return (img_size / patch_size) * (img_size / patch_size); }
  // Positions the image takes at the start of the decoder's sequence.
  int64_t image_prefix_len() const {
    if (image_tokens == "cls") return 1;
    const int64_t g = img_size / patch_size / std::max<int64_t>(patch_pool, 1);
    return g * g;
  }

  // Trainable parameters of the model this config builds, without building it:
  // a checkpoint is checked against this before any weight is allocated. With
  // the caps of validate() no term overflows int64.
  int64_t parameter_count() const {
    auto block = [](int64_t c) { return 12 * c * c + 10 * c; };  // ln1, qkv, proj, ln2, ffn
    const int64_t E = image_embed_dim, n = n_embd, V = vocab_size;
    const int64_t vit = E * in_channels * patch_size * patch_size + E  // patch conv
                        + E + (num_patches() + 1) * E                  // cls token, positions
                        + num_blks * block(E) + 2 * E;                 // blocks, final LayerNorm
    const int64_t projector = 4 * E * E + 4 * E + 4 * E * n + n;
    const int64_t decoder = V * n + block_size * n + n_layer * block(n) + 2 * n + n * V + V;
    return vit + projector + decoder;
  }

  void validate() const {
    auto pos = [](int64_t v, const char* name) { SEEMORE_CHECK(v > 0, "config: '", name, "' must be > 0, got ", v); };
    pos(img_size, "img_size");
    pos(patch_size, "patch_size");
    pos(in_channels, "in_channels");
    pos(image_embed_dim, "image_embed_dim");
    pos(n_embd, "n_embd");
    pos(n_head, "n_head");
    pos(vocab_size, "vocab_size");
    pos(block_size, "block_size");
    SEEMORE_CHECK(num_blks >= 0 && n_layer >= 0, "config: 'num_blks' and 'n_layer' must be >= 0");
    // Far beyond any model this library trains; they keep size arithmetic
    // (and a hostile file's claims) away from int64 overflow.
    auto cap = [](int64_t v, int64_t hi, const char* name) {
      SEEMORE_CHECK(v <= hi, "config: '", name, "' ", v, " exceeds the limit ", hi);
    };
    cap(img_size, 1 << 16, "img_size");
    cap(in_channels, 64, "in_channels");
    cap(image_embed_dim, 1 << 16, "image_embed_dim");
    cap(n_embd, 1 << 16, "n_embd");
    cap(n_head, 1 << 16, "n_head");
    cap(num_blks, 1 << 10, "num_blks");
    cap(n_layer, 1 << 10, "n_layer");
    cap(vocab_size, 1 << 24, "vocab_size");
    cap(block_size, 1 << 24, "block_size");
    SEEMORE_CHECK(patch_size <= img_size, "config: 'patch_size' ", patch_size, " exceeds 'img_size' ", img_size);
    SEEMORE_CHECK(image_embed_dim % n_head == 0, "config: 'image_embed_dim' ", image_embed_dim,
                  " is not divisible by 'n_head' ", n_head);
    SEEMORE_CHECK(n_embd % n_head == 0, "config: 'n_embd' ", n_embd, " is not divisible by 'n_head' ", n_head);
    SEEMORE_CHECK(dropout >= 0 && dropout < 1, "config: 'dropout' must be in [0, 1), got ", dropout);
    SEEMORE_CHECK(image_tokens == "cls" || image_tokens == "patches", "config: 'image_tokens' must be \"cls\" or "
                  "\"patches\", got \"", image_tokens, "\"");
    SEEMORE_CHECK(patch_pool >= 1 && patch_pool <= (1 << 16), "config: 'patch_pool' must be >= 1, got ", patch_pool);
    SEEMORE_CHECK(patch_pool == 1 || image_tokens == "patches",
                  "config: 'patch_pool' ", patch_pool, " pools patch tokens: it needs \"image_tokens\": \"patches\"");
    SEEMORE_CHECK((img_size / patch_size) % patch_pool == 0, "config: 'patch_pool' ", patch_pool,
                  " does not divide the ", img_size / patch_size, "x", img_size / patch_size, " patch grid");
    SEEMORE_CHECK(image_prefix_len() < block_size, "config: the image takes ", image_prefix_len(),
                  " decoder positions, and 'block_size' ", block_size, " leaves none for text");
    SEEMORE_CHECK(pad_id >= 0 && pad_id < vocab_size, "config: 'pad_id' ", pad_id, " outside the vocabulary");
    SEEMORE_CHECK(eos_id == -1 || (eos_id >= 0 && eos_id < vocab_size), "config: 'eos_id' ", eos_id,
                  " outside the vocabulary");
  }

  nlohmann::json to_json() const {
    return {{"preset", preset},
            {"img_size", img_size},
            {"patch_size", patch_size},
            {"in_channels", in_channels},
            {"image_embed_dim", image_embed_dim},
            {"num_blks", num_blks},
            {"n_embd", n_embd},
            {"n_layer", n_layer},
            {"n_head", n_head},
            {"vocab_size", vocab_size},
            {"block_size", block_size},
            {"dropout", dropout},
            {"pad_id", pad_id},
            {"eos_id", eos_id},
            {"attn_scale_by_width", attn_scale_by_width},
            {"post_ln_ffn_residual", post_ln_ffn_residual},
            {"image_predicts_first", image_predicts_first},
            {"pad_counts_in_loss", pad_counts_in_loss},
            {"image_tokens", image_tokens},
            {"patch_pool", patch_pool}};
  }

  // Starts from the preset named in "preset" (default seemore) and overrides
  // the fields present. A field of the wrong type, or an unknown field, is an
  // error naming it and the expected type. `where` prefixes messages (a file name).
  // A JSON file; `preset` is the base when the file names none.
  static VLMConfig from_file(const std::string& path, const std::string& preset = "seemore") {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(io::read_file_bytes(path, 1 << 20));
    } catch (const nlohmann::json::exception& e) {
      detail::fail(path, ": not valid JSON (", e.what(), ")");
    }
    if (j.is_object() && !j.contains("preset")) j["preset"] = preset;
    return from_json(j, path);
  }

  static VLMConfig from_json(const nlohmann::json& j, const std::string& where = "config") {
    SEEMORE_CHECK(j.is_object(), where, ": expected a JSON object, got ", j.type_name());
    VLMConfig c;
    if (j.contains("preset")) {
      SEEMORE_CHECK(j["preset"].is_string(), where, ": field 'preset' must be a string, got ", j["preset"].type_name());
      c = from_preset(j["preset"].get<std::string>());
    }
    auto integer = [&](const char* k, auto& dst) {
      using I = std::decay_t<decltype(dst)>;
      if (!j.contains(k)) return;
      const auto& v = j[k];
      SEEMORE_CHECK(v.is_number_integer(), where, ": field '", k, "' must be an integer, got ", v.type_name(),
                    (v.is_number() ? " (not whole)" : ""));
      // Unsigned JSON numbers above INT64_MAX would wrap in get<int64_t>().
      const bool fits = v.is_number_unsigned()
                            ? v.get<uint64_t>() <= uint64_t(std::numeric_limits<I>::max())
                            : v.get<int64_t>() >= int64_t(std::numeric_limits<I>::min()) &&
                                  v.get<int64_t>() <= int64_t(std::numeric_limits<I>::max());
      SEEMORE_CHECK(fits, where, ": field '", k, "' = ", v.dump(), " is out of range");
      dst = v.get<I>();
    };
    auto number = [&](const char* k, double& dst) {
      if (!j.contains(k)) return;
      SEEMORE_CHECK(j[k].is_number(), where, ": field '", k, "' must be a number, got ", j[k].type_name());
      dst = j[k].get<double>();
    };
    auto boolean = [&](const char* k, bool& dst) {
      if (!j.contains(k)) return;
      SEEMORE_CHECK(j[k].is_boolean(), where, ": field '", k, "' must be a boolean, got ", j[k].type_name());
      dst = j[k].get<bool>();
    };
    static const char* known[] = {"preset", "img_size", "patch_size", "in_channels", "image_embed_dim", "num_blks",
                                  "n_embd", "n_layer", "n_head", "vocab_size", "block_size", "dropout", "pad_id",
                                  "eos_id", "attn_scale_by_width", "post_ln_ffn_residual", "image_predicts_first",
                                  "pad_counts_in_loss", "image_tokens", "patch_pool"};
    for (auto it = j.begin(); it != j.end(); ++it) {
      bool ok = false;
      for (auto* k : known) ok = ok || it.key() == k;
      SEEMORE_CHECK(ok, where, ": unknown field '", it.key(), "'");
    }
    integer("img_size", c.img_size);
    integer("patch_size", c.patch_size);
    integer("in_channels", c.in_channels);
    integer("image_embed_dim", c.image_embed_dim);
    integer("num_blks", c.num_blks);
    integer("n_embd", c.n_embd);
    integer("n_layer", c.n_layer);
    integer("n_head", c.n_head);
    integer("vocab_size", c.vocab_size);
    integer("block_size", c.block_size);
    number("dropout", c.dropout);
    integer("pad_id", c.pad_id);
    integer("eos_id", c.eos_id);
    boolean("attn_scale_by_width", c.attn_scale_by_width);
    boolean("post_ln_ffn_residual", c.post_ln_ffn_residual);
    boolean("image_predicts_first", c.image_predicts_first);
    boolean("pad_counts_in_loss", c.pad_counts_in_loss);
    if (j.contains("image_tokens")) {
      SEEMORE_CHECK(j["image_tokens"].is_string(), where, ": field 'image_tokens' must be a string, got ",
                    j["image_tokens"].type_name());
      c.image_tokens = j["image_tokens"].get<std::string>();
    }
    integer("patch_pool", c.patch_pool);
    try {
      c.validate();
    } catch (const Error& e) {
      detail::fail(where, ": ", std::string(e.what()).substr(10));
    }
    return c;
  }
};

}  // namespace seemore::nn
