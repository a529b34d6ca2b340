// Captioning from a program of your own with seemore::Captioner: the model is
// loaded once, then images are captioned from files or from RGB pixels in
// memory (here a scene drawn by the synthetic dataset's generator).
//
//   caption_image run/model.safetensors photo.png [more.jpg ...]
#include <seemore/captioner.hpp>
#include <seemore/data/synthetic.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: caption_image CHECKPOINT [IMAGE ...]\n");
    return 2;
  }
  try {
    const seemore::Captioner cap(argv[1]);
    seemore::CaptionOptions greedy;  // the most likely character each time
    if (!cap.config().image_predicts_first) greedy.prompt = "A";  // the seemore preset needs a first character
    for (int i = 2; i < argc; ++i) std::printf("%s: %s\n", argv[i], cap.caption(argv[i], greedy).c_str());

    const auto scene = seemore::data::synthetic_scene(7, 0, 64);  // pixels in memory
    seemore::CaptionOptions sampled = greedy;
    sampled.greedy = false;
    sampled.temperature = 0.7;
    const auto& px = scene.image;
    std::printf("drawn \"%s\": %s\n", scene.caption.c_str(), cap.caption_rgb(px.rgb.data(), px.width, px.height, sampled).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "caption_image: %s\n", e.what());
    return 1;
  }
  return 0;
}
