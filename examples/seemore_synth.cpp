// seemore-synth: writes the built-in synthetic dataset (PNG scenes + a JSONL
// manifest whose captions state what each scene shows). Deterministic from
// --seed; scene i is the same whatever --count is.
//
//   seemore-synth --out data/train --count 2000 --seed 1
//   seemore-synth --out data/test --count 200 --seed 1 --first 2000
#include <seemore/vlm.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  std::string out = "synthetic", manifest = "captions.jsonl";
  uint64_t seed = 1, first = 0, count = 1000;
  int64_t size = 128;
  CLI::App app{"seemore-synth: generate the built-in synthetic image/caption dataset"};
  app.add_option("--out", out, "output directory");
  app.add_option("--manifest", manifest, "manifest file name inside --out");
  app.add_option("--count", count, "number of scenes");
  app.add_option("--first", first, "index of the first scene (held-out sets start past the training ones)");
  app.add_option("--seed", seed, "dataset seed");
  app.add_option("--size", size, "image side in pixels")->check(CLI::Range(16, 1024));
  CLI11_PARSE(app, argc, argv);
  try {
    seemore::io::make_directories(out);
    seemore::data::write_synthetic_dataset(out, manifest, seed, first, count, size);
    std::printf("%s/%s: %llu scenes\n", out.c_str(), manifest.c_str(), static_cast<unsigned long long>(count));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seemore-synth: %s\n", e.what());
    return 1;
  }
  return 0;
}
