// seemore/captioner.hpp — captioning for programs that embed a trained model:
// load a checkpoint once, then caption images given as files or as RGB pixels
// in memory, greedily or sampled; or score a caption.
//
//   seemore::Captioner cap("run/model.safetensors");
//   std::string text = cap.caption("photo.jpg");
//   seemore::CaptionOptions sampled;
//   sampled.greedy = false;
//   std::string other = cap.caption_rgb(pixels, width, height, sampled);
//
// The checkpoint is ours (config and vocabulary inside) or a PyTorch reference
// state dict (torch.save or safetensors; sizes read from its tensors, quirks
// from CaptionerOptions::preset). Images are resized to the model's input as
// training resized them (PIL's bilinear) and normalised the same way. The
// `seemore` preset's image position predicts nothing, so a caption from it
// needs a prompt of at least the first character.
#pragma once

#include <seemore/data/image.hpp>
#include <seemore/io/checkpoint.hpp>

#include <memory>
#include <optional>
#include <string>

namespace seemore {

struct CaptionerOptions {
  std::string device = "cpu";   // cpu, cuda, cuda:N (a CUDA device needs an nvcc build)
  std::string preset;           // the quirks of a bare reference state dict ("" = seemore)
  std::optional<nn::VLMConfig> config;  // exactly the model in the checkpoint (else its own, or read from its tensors)
  data::ImageLimits limits;     // refuse images whose header claims more pixels
};

struct CaptionOptions {
  std::string prompt;           // text the caption continues (and starts with)
  bool greedy = true;           // the most likely character each time; false: sample
  double temperature = 1.0;
  int64_t top_k = 0;            // 0: off
  double top_p = 1.0;           // 1: off
  uint64_t seed = 0;            // sampling seed
  int64_t max_tokens = 100;     // new characters at most
};

class Captioner {
 public:
  explicit Captioner(const std::string& checkpoint, const CaptionerOptions& o = {})
      : opt_(o), dev_(Device::parse(o.device)) {
    auto loaded = io::load_checkpoint<float>(checkpoint, o.config, o.preset.empty() ? "seemore" : o.preset);
    SEEMORE_CHECK(o.config || o.preset.empty() || loaded.model->config().preset == o.preset, checkpoint,
                  ": carries its own config, of the ", loaded.model->config().preset, " preset, not the ", o.preset,
                  " preset asked for");
    model_ = std::move(loaded.model);
    vocab_ = loaded.vocab;
    model_->to(dev_);
    model_->eval();
  }

  // The caption of an image file (any format data/image.hpp reads).
  std::string caption(const std::string& image_path, const CaptionOptions& o = {}) const {
    return caption(data::load_image(image_path, opt_.limits), o);
  }
  // The caption of width × height RGB pixels, row by row, 3 bytes each.
  std::string caption_rgb(const uint8_t* rgb, int64_t width, int64_t height, const CaptionOptions& o = {}) const {
    return caption(image_from_rgb(rgb, width, height), o);
  }
  std::string caption(const data::Image& image, const CaptionOptions& o = {}) const {
    const auto& c = model_->config();
    const auto prompt = vocab_.encode(o.prompt, "caption prompt");
    SEEMORE_CHECK(c.image_predicts_first || !prompt.empty(), "the ", c.preset,
                  " preset's image position predicts nothing: give at least the first character as the prompt");
    nn::GenerateOptions g;
    g.greedy = o.greedy || o.temperature <= 0;
    g.temperature = o.temperature;
    g.top_k = o.top_k;
    g.top_p = o.top_p;
    g.seed = o.seed;
    g.max_tokens = o.max_tokens;
    return o.prompt + vocab_.decode(model_->generate(input(image), prompt, g));
  }

  // The model's teacher-forced loss of `text` for the image (the reference's
  // forward loss for a batch of one: the text shifted by one, <pad> appended).
  double score(const data::Image& image, const std::string& text) const {
    auto ids = vocab_.encode(text, "score text");
    SEEMORE_CHECK(!ids.empty(), "score: empty text");
    const int64_t T = int64_t(ids.size());
    std::vector<int32_t> tgt(ids.begin() + 1, ids.end());
    tgt.push_back(vocab_.pad_id());
    NoGradGuard ng;
    return model_
        ->forward(input(image), Tensor<int32_t>::from_vector({1, T}, ids, dev_), Tensor<int32_t>::from_vector({1, T}, tgt, dev_))
        .loss.item();
  }
  double score(const std::string& image_path, const std::string& text) const {
    return score(data::load_image(image_path, opt_.limits), text);
  }

  // The image as the model sees it: resized to its input, normalised, on its device ([1, 3, S, S]).
  Tensor<float> input(const data::Image& image) const {
    const int64_t S = model_->config().img_size;
    return data::image_to_tensor<float>(data::resize_bilinear(image, S, S)).to(dev_);
  }
  static data::Image image_from_rgb(const uint8_t* rgb, int64_t width, int64_t height) {
    SEEMORE_CHECK(rgb && width > 0 && height > 0 && width <= (int64_t(1) << 16) && height <= (int64_t(1) << 16),
                  "caption_rgb: ", width, "x", height, " pixels at ", static_cast<const void*>(rgb),
                  " is not an image (sides 1 to 65536)");
    data::Image img;
    img.width = width;
    img.height = height;
    img.rgb.assign(rgb, rgb + width * height * 3);
    return img;
  }

  const nn::VLMConfig& config() const { return model_->config(); }
  const data::CharTokenizer& vocab() const { return vocab_; }
  nn::VisionLanguageModel<float>& model() const { return *model_; }

 private:
  CaptionerOptions opt_;
  Device dev_;
  std::unique_ptr<nn::VisionLanguageModel<float>> model_;
  data::CharTokenizer vocab_;
};

}  // namespace seemore
