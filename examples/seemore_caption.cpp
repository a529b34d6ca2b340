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

// --eval MANIFEST: caption every image of a manifest (or CSV), compare with its
// caption, print the exact-match accuracy and examples, optionally an HTML page.
int evaluate(const Args& a, nn::VisionLanguageModel<float>& model, const data::CharTokenizer& vocab,
             const std::vector<int32_t>& prompt, const nn::GenerateOptions& opt, const data::ImageLimits& lim) {
  const auto& cfg = model.config();
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
  std::string rows;
  const int64_t S = cfg.img_size;
  for (size_t i = 0; i < raw.size(); ++i) {
    const auto& r = raw[i];
    auto img = r.image_bytes ? data::decode_image(*r.image_bytes, r.where, lim) : data::load_image(r.image_path, lim);
    auto in = data::image_to_tensor<float>(data::resize_bilinear(img, S, S)).to(model.device());
    std::vector<int32_t> p = prompt;
    if (!cfg.image_predicts_first && p.empty()) p = vocab.encode(r.caption.substr(0, 1), r.where);  // seemore preset: the first character
    const std::string got = vocab.decode(p) + vocab.decode(model.generate(in, p, opt));
    const bool ok = got == r.caption;
    correct += ok;
    baseline += r.caption == majority;
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
  const Device dev = tools::open_device(a.device);
  // --config: exactly this model. --preset: the quirks of a bare reference
  // state dict, whose sizes come from its tensors; a checkpoint of ours
  // carries its own config, which must then be of that preset.
  std::optional<nn::VLMConfig> explicit_config;
  if (!a.config_file.empty())
    explicit_config = nn::VLMConfig::from_file(a.config_file, a.preset.empty() ? "seemore" : a.preset);
  const auto st = io::load_tensors(a.checkpoint);
  auto loaded = io::load_checkpoint<float>(st, a.checkpoint, explicit_config, a.preset.empty() ? "seemore" : a.preset);
  SEEMORE_CHECK(explicit_config || a.preset.empty() || loaded.model->config().preset == a.preset, a.checkpoint,
                ": carries its own config, of the ", loaded.model->config().preset, " preset, not --preset ", a.preset);
  auto& model = *loaded.model;
  model.to(dev);
  const auto& cfg = model.config();
  model.eval();
  data::ImageLimits lim;
  lim.max_pixels = a.max_pixels;
  const int64_t S = cfg.img_size;
  auto load = [&](const std::string& path) {
    return data::image_to_tensor<float>(data::resize_bilinear(data::load_image(path, lim), S, S)).to(dev);
  };

  if (a.has_score) {
    SEEMORE_CHECK(!a.images.empty(), "--score needs an --image");
    auto ids = loaded.vocab.encode(a.score, "--score text");
    SEEMORE_CHECK(!ids.empty(), "--score: empty text");
    const int64_t T = int64_t(ids.size());
    std::vector<int32_t> tgt(ids.begin() + 1, ids.end());
    tgt.push_back(loaded.vocab.pad_id());
    NoGradGuard ng;
    auto out = model.forward(load(a.images[0]), Tensor<int32_t>::from_vector({1, T}, ids, dev),
                             Tensor<int32_t>::from_vector({1, T}, tgt, dev));
    std::printf("loss %.6f\n", out.loss.item());
    return 0;
  }

  auto prompt = loaded.vocab.encode(a.prompt, "--prompt");
  nn::GenerateOptions opt;
  opt.greedy = a.greedy || (a.temperature <= 0);
  opt.temperature = a.temperature;
  opt.top_k = a.top_k;
  opt.top_p = a.top_p;
  opt.seed = a.seed;
  opt.max_tokens = a.max_tokens;
  if (!a.eval_manifest.empty()) return evaluate(a, model, loaded.vocab, prompt, opt, lim);

  SEEMORE_CHECK(!a.images.empty(), "no --image given");
  SEEMORE_CHECK(cfg.image_predicts_first || !prompt.empty(), "the ", cfg.preset,
                " preset's image position predicts nothing: give at least the first character with --prompt");
  std::vector<std::string> captions;
  for (auto& path : a.images) {  // load every image first: a bad one fails before any output
    auto img = load(path);
    auto ids = model.generate(img, prompt, opt);
    std::string text = a.prompt + loaded.vocab.decode(ids);
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
