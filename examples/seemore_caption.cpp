// seemore-caption: captions images with a trained model, or scores a caption.
//
//   seemore-caption --checkpoint run/model.safetensors --image a.png b.jpg
//   seemore-caption --checkpoint torch.safetensors --image a.png --prompt A --greedy
//   seemore-caption --checkpoint run/model.safetensors --image a.png --score "A red car."
//
// One caption per image, each on its own line, the last lines of the output.
// With --score: the model's teacher-forced loss of TEXT for the (first) image,
// exactly the reference's forward loss for a batch of one whose targets are
// TEXT shifted by one with <pad> appended, printed last as "loss <value>".
#include <seemore/vlm.hpp>

#include "device_relaunch.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <map>

using namespace seemore;

namespace {

struct Args {
  std::string checkpoint, preset, config_file, prompt, score, device = "cpu", eval_manifest, html, train_manifest;
  int64_t examples = 5;
  std::vector<std::string> images;
  bool greedy = false, has_score = false;
  double temperature = 1.0, top_p = 1.0;
  int64_t top_k = 0, max_tokens = 100, threads = 0, max_pixels = int64_t(8192) * 8192;
  uint64_t seed = 0;
};

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

// Per-fact accuracy over the scenes of seemore-synth: each fact a caption
// states, right or wrong, when every true caption follows that grammar.
struct FactScore {
  int64_t colour = 0, size = 0, count = 0, shape = 0, position = 0, single = 0, n = 0;
  bool grammar = true;
  void add(const std::string& got, const std::string& truth) {
    const auto t = data::parse_synthetic_caption(truth), g = data::parse_synthetic_caption(got);
    grammar = grammar && t.valid;
    ++n;
    colour += g.colour == t.colour;
    size += g.size == t.size;
    count += g.count == t.count;
    shape += g.shape == t.shape;
    if (t.count == "a") {
      ++single;
      position += g.count == "a" && g.position == t.position;
    }
  }
  void print() const {
    if (!grammar || n == 0) return;
    auto pct = [&](int64_t k, int64_t of) { return of ? 100.0 * double(k) / double(of) : 0.0; };
    std::printf("facts right: colour %.1f%%, size %.1f%%, count %.1f%%, shape %.1f%%, position %.1f%% of %lld "
                "single-shape scenes\n",
                pct(colour, n), pct(size, n), pct(count, n), pct(shape, n), pct(position, single),
                static_cast<long long>(single));
  }
};

// --eval MANIFEST: caption every image of a manifest (or CSV), compare with its
// caption, print the exact-match accuracy and examples, optionally an HTML page.
int evaluate(const Args& a, const Captioner& cap, const CaptionOptions& opt) {
  const auto& cfg = cap.config();
  auto raw = data::read_samples(a.eval_manifest);
  // What a model that ignores the image can do at best: always say the most
  // frequent training caption (given --train), else the most frequent caption here.
  std::map<std::string, int64_t> freq;
  for (auto& r : a.train_manifest.empty() ? raw : data::read_samples(a.train_manifest)) ++freq[r.caption];
  std::string majority;
  int64_t best = -1;
  for (auto& [c, n] : freq)
    if (n > best) best = n, majority = c;
  int64_t correct = 0, baseline = 0;
  FactScore facts;
  std::string rows;
  const int64_t S = cfg.img_size;
  data::ImageLimits lim;
  lim.max_pixels = a.max_pixels;
  double seconds = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    const auto& r = raw[i];
    auto img = r.image_bytes ? data::decode_image(*r.image_bytes, r.where, lim) : data::load_image(r.image_path, lim);
    CaptionOptions o = opt;
    if (!cfg.image_predicts_first && o.prompt.empty()) o.prompt = r.caption.substr(0, 1);  // seemore preset: the first character
    const auto t0 = std::chrono::steady_clock::now();
    const std::string got = cap.caption(img, o);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const bool ok = got == r.caption;
    correct += ok;
    baseline += r.caption == majority;
    facts.add(got, r.caption);
    if (int64_t(i) < a.examples) std::printf("%s  ->  \"%s\"  (%s: \"%s\")\n", r.where.c_str(), got.c_str(), ok ? "right" : "truth", r.caption.c_str());
    if (!a.html.empty()) {
      auto shown = data::resize_bilinear(img, S, S);  // what the model saw (the page scales it up)
      std::string png = io::encode_png(shown.rgb.data(), shown.width, shown.height);
      rows += "<tr><td><img src=\"data:image/png;base64," + data::base64_encode(png) + "\"></td><td class=\"" +
              (ok ? "ok" : "bad") + "\">" + html_escape(got) + "</td><td>" + html_escape(r.caption) + "</td></tr>\n";
    }
  }
  const double acc = double(correct) / double(raw.size()), base = double(baseline) / double(raw.size());
  if (!a.html.empty()) {
    char head[512];
    std::snprintf(head, sizeof head,
                  "<p>%lld held-out images: exact-match accuracy <b>%.1f%%</b>; a model that ignores the image "
                  "(always the most frequent training caption) gets %.1f%%.</p>\n",
                  static_cast<long long>(raw.size()), 100 * acc, 100 * base);
    io::write_file_atomic(a.html, "<!doctype html><html><head><meta charset=\"utf-8\"><title>seemore captions</title>"
                                  "<style>body{font-family:sans-serif}td{padding:4px 12px}.ok{color:#070}.bad{color:#b00}"
                                  "img{width:128px;height:128px;image-rendering:pixelated}</style></head><body>"
                                  "<h1>seemore: held-out images, generated and true captions</h1>\n" +
                                      std::string(head) +
                                      "<table><tr><th>image</th><th>generated</th><th>true</th></tr>\n" + rows +
                                      "</table></body></html>\n");
  }
  std::printf("captioning: %.2f ms an image (%s, %s image tokens)\n", 1e3 * seconds / double(raw.size()),
              opt.greedy ? "greedy" : "sampled", cfg.image_tokens.c_str());
  facts.print();
  std::printf("image-blind baseline (most frequent caption \"%s\"): %.2f%%\n", majority.c_str(), 100 * base);
  std::printf("exact-match accuracy %.2f%% (%lld/%lld)\n", 100 * acc, static_cast<long long>(correct),
              static_cast<long long>(raw.size()));
  return 0;
}

int run(const Args& a) {
  if (a.threads > 0) {
    backend::cpu::set_num_threads(int(a.threads));
    Eigen::setNbThreads(int(a.threads));
  }
  (void)tools::open_device(a.device);  // fails early, before any output, when the device cannot be used
  // --config: exactly this model. --preset: the quirks of a bare reference
  // state dict, whose sizes come from its tensors; a checkpoint of ours
  // carries its own config, which must then be of that preset.
  CaptionerOptions co;
  co.device = a.device;
  co.preset = a.preset;
  co.limits.max_pixels = a.max_pixels;
  if (!a.config_file.empty()) co.config = nn::VLMConfig::from_file(a.config_file, a.preset.empty() ? "seemore" : a.preset);
  const Captioner cap(a.checkpoint, co);

  if (a.has_score) {
    SEEMORE_CHECK(!a.images.empty(), "--score needs an --image");
    std::printf("loss %.6f\n", cap.score(a.images[0], a.score));
    return 0;
  }

  CaptionOptions opt;
  opt.prompt = a.prompt;
  opt.greedy = a.greedy || (a.temperature <= 0);
  opt.temperature = a.temperature;
  opt.top_k = a.top_k;
  opt.top_p = a.top_p;
  opt.seed = a.seed;
  opt.max_tokens = a.max_tokens;
  (void)cap.vocab().encode(a.prompt, "--prompt");  // a prompt outside the vocabulary fails before any work
  if (!a.eval_manifest.empty()) return evaluate(a, cap, opt);

  SEEMORE_CHECK(!a.images.empty(), "no --image given");
  SEEMORE_CHECK(cap.config().image_predicts_first || !a.prompt.empty(), "the ", cap.config().preset,
                " preset's image position predicts nothing: give at least the first character with --prompt");
  std::vector<std::string> captions;
  for (auto& path : a.images) {  // every image captioned first: a bad one fails before any output
    std::string text = cap.caption(path, opt);
    for (auto& c : text)
      if (c == '\n') c = ' ';  // one line per image
    captions.push_back(text);
  }
  for (auto& c : captions) std::printf("%s\n", c.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"seemore-caption: caption images with a trained seemore model"};
  app.add_option("--checkpoint", a.checkpoint, "model.safetensors: ours, or a PyTorch reference state dict (safetensors or torch.save .pt/.pth; sizes read from its tensors)")
      ->required();
  app.add_option("--preset", a.preset, "quirks of a bare reference state dict (default seemore); ours carry their own")
      ->check(CLI::IsMember({"seemore", "standard"}));
  app.add_option("--config", a.config_file, "config JSON: exactly the model in the checkpoint");
  app.add_option("--image", a.images, "image file(s): PNG, JPEG, GIF, WebP, BMP, TIFF, PNM, SGI, PCX, ICO, CUR or TGA")->expected(1, -1);
  app.add_option("--prompt", a.prompt, "text to continue (seemore preset: at least the first character)");
  app.add_flag("--greedy", a.greedy, "always the most likely character");
  app.add_option("--temperature", a.temperature, "sampling temperature");
  app.add_option("--top-k", a.top_k, "sample among the k most likely characters");
  app.add_option("--top-p", a.top_p, "sample within the smallest set holding this probability");
  app.add_option("--seed", a.seed, "sampling seed");
  app.add_option("--max-tokens", a.max_tokens, "new characters at most");
  app.add_option("--score", a.score, "print the model's teacher-forced loss of TEXT for the image");
  app.add_option("--eval", a.eval_manifest, "caption every image of this JSONL/CSV and report exact-match accuracy");
  app.add_option("--train", a.train_manifest, "with --eval: the training data, for the image-blind baseline");
  app.add_option("--html", a.html, "with --eval: write a page of images with generated and true captions");
  app.add_option("--examples", a.examples, "with --eval: print this many examples");
  app.add_option("--device", a.device, "cpu or cuda");
  app.add_option("--threads", a.threads, "CPU threads");
  app.add_option("--max-pixels", a.max_pixels, "refuse images whose header claims more pixels");
  try {
    app.parse(argc, argv);
    a.has_score = app.count("--score") > 0;
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    tools::relaunch_for_device(a.device, argv);
    backend::cpu::use_blas_from_env();  // a bad SEEMORE_BLAS is reported before any work
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seemore-caption: %s\n", e.what());
    return 1;
  }
}
