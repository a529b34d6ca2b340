// Composition: Sequential and ModuleList name their children as torch.nn
// does, layers built from options refuse what cannot work at construction,
// and a ViT of one's own options serves as a backbone.
#include <catch2/catch.hpp>
#include <seemore/io/safetensors.hpp>
#include <seemore/nn/activation.hpp>
#include <seemore/nn/container.hpp>
#include <seemore/nn/vit.hpp>

#include <cstdio>

using namespace seemore;

namespace {
std::vector<std::string> names_of(const nn::Module<float>& m) {
  std::vector<std::string> out;
  for (auto& [n, t] : m.state_dict()) out.push_back(n);
  return out;
}

// A model of one's own: a ModuleList of blocks under "layers", a Sequential head.
struct Tiny : nn::Module<float> {
  explicit Tiny(Generator& g) {
    nn::BlockOptions bo;
    bo.attn.dim = 8;
    bo.attn.heads = 2;
    layers = register_module("layers", std::make_shared<nn::ModuleList<nn::Block<float>>>());
    for (int i = 0; i < 2; ++i) layers->push_back(std::make_shared<nn::Block<float>>(bo, g));
    head = register_module("head", std::make_shared<nn::Sequential<float>>(
                                       std::make_shared<nn::LayerNorm<float>>(8), std::make_shared<nn::Linear<float>>(8, 3, false, g)));
  }
  Tensor<float> forward(Tensor<float> x) const {
    for (auto& b : *layers) x = b->forward(x);
    return head->forward(x);
  }
  std::shared_ptr<nn::ModuleList<nn::Block<float>>> layers;
  std::shared_ptr<nn::Sequential<float>> head;
};
}  // namespace

TEST_CASE("nn: Sequential applies its modules in order under torch.nn's names", "[nn]") {
  Generator g(5);
  nn::Sequential<float> mlp;
  mlp.push_back(std::make_shared<nn::Linear<float>>(4, 6, true, g))
      .push_back(std::make_shared<nn::GELU<float>>())
      .push_back(std::make_shared<nn::Linear<float>>(6, 2, true, g));
  CHECK(names_of(mlp) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  CHECK(mlp.size() == 3);
  auto x = Tensor<float>::randn({3, 4}, g);
  auto fc1 = mlp.at<nn::Linear<float>>(0), fc2 = mlp.at<nn::Linear<float>>(2);
  CHECK(mlp.forward(x).to_vector() == fc2->forward(gelu(fc1->forward(x))).to_vector());
  CHECK_THROWS_WITH(mlp.at<nn::Linear<float>>(1), Catch::Contains("module 1 is not of the type asked for"));
  CHECK_THROWS_WITH(mlp.at<nn::Linear<float>>(3), Catch::Contains("index 3 out of range (3 modules)"));
  CHECK_THROWS_WITH(nn::Sequential<float>().forward(x), Catch::Contains("empty Sequential"));
  // Gradients flow through it to every parameter.
  sum(mlp.forward(x)).backward();
  for (auto& [n, p] : mlp.named_parameters()) CHECK(p.grad().defined());
}

TEST_CASE("nn: ModuleList and Sequential inside a model save and load by name", "[nn]") {
  Generator g1(1), g2(2);
  Tiny a(g1), b(g2);
  const auto names = names_of(a);
  CHECK(names.front() == "layers.0.ln1.weight");
  CHECK(std::find(names.begin(), names.end(), "layers.1.attn.heads.1.value.weight") != names.end());
  CHECK(std::find(names.begin(), names.end(), "layers.1.ffn.2.bias") != names.end());
  CHECK(names.back() == "head.1.weight");
  const std::string path = "test_container.safetensors";
  io::save_safetensors(path, a.state_dict());
  b.load_state_dict(io::load_safetensors(path).as_map());
  std::remove(path.c_str());
  Generator gx(3);
  auto x = Tensor<float>::randn({2, 5, 8}, gx);
  a.eval();
  b.eval();
  CHECK(a.forward(x).to_vector() == b.forward(x).to_vector());
  CHECK(a.layers->size() == 2);
  CHECK_THROWS_WITH((*a.layers)[2], Catch::Contains("index 2 out of range"));
}

TEST_CASE("nn: layer options are checked at construction, saying what to change", "[nn]") {
  Generator g(1);
  nn::BlockOptions bo;
  bo.attn.dim = 30;
  bo.attn.heads = 4;
  CHECK_THROWS_WITH(nn::Block<float>(bo, g), Catch::Contains("Block: dim 30 is not divisible by heads 4: choose heads "
                                                             "among {1, 2, 3, 5, 6, 10, 15, 30}"));
  bo.attn.heads = 3;
  bo.attn.dropout = 1.0;
  CHECK_THROWS_WITH(nn::Block<float>(bo, g), Catch::Contains("dropout must be in [0, 1)"));
  nn::BlockOptions unset;
  CHECK_THROWS_WITH(nn::Block<float>(unset, g), Catch::Contains("dim (0) and heads (1) must be > 0"));
  CHECK_THROWS_WITH(nn::Linear<float>(nn::LinearOptions{0, 3}, g), Catch::Contains("Linear: in (0)"));
  nn::ViTOptions vo;
  vo.img_size = 30;
  vo.patch_size = 4;
  CHECK_THROWS_WITH(nn::ViT<float>(vo, g), Catch::Contains("img_size 30 is not a multiple of patch_size 4"));
  vo.img_size = 32;
  vo.output = "tokens";
  CHECK_THROWS_WITH(nn::ViT<float>(vo, g), Catch::Contains("output must be \"cls\" or \"patches\""));
  // The default scale is 1/sqrt(head width); a given one is kept.
  nn::MultiHeadAttentionOptions mo;
  mo.dim = 64;
  mo.heads = 4;
  CHECK(mo.resolved_scale() == 0.25);
}

TEST_CASE("nn: a ViT from its own options is a backbone: CLS or patch tokens", "[nn]") {
  nn::ViTOptions o;
  o.img_size = 16;
  o.patch_size = 4;
  o.dim = 24;
  o.depth = 2;
  o.heads = 3;
  Generator g(9);
  nn::ViT<float> vit(o, g);
  vit.eval();
  auto images = Tensor<float>::randn({2, 3, 16, 16}, g);
  auto cls = vit.forward(images);
  auto patches = vit.patch_tokens(images);
  CHECK(cls.shape() == Shape{2, 24});
  CHECK(patches.shape() == Shape{2, 16, 24});
  // encode() by its options: the CLS as one token, or the patches pooled 2×2.
  CHECK(vit.encode(images).shape() == Shape{2, 1, 24});
  o.output = "patches";
  o.patch_pool = 2;
  Generator g2(9);
  nn::ViT<float> pooled(o, g2);
  pooled.eval();
  auto enc = pooled.encode(images);
  REQUIRE(enc.shape() == Shape{2, 4, 24});
  // Token 0 of the pooled grid is the mean of patches 0, 1, 4, 5 (row-major 4×4 grid).
  auto p = patches.to_vector(), e = enc.to_vector();
  for (int64_t c = 0; c < 24; ++c) {
    const float m = (p[size_t(c)] + p[size_t(24 + c)] + p[size_t(4 * 24 + c)] + p[size_t(5 * 24 + c)]) / 4;
    CHECK(e[size_t(c)] == Approx(m).margin(1e-5));
  }
  // The same parameters, named as the VLM's vision encoder names them.
  CHECK(names_of(vit).front() == "cls_token");
  // The learned tokens and positions are embeddings: no weight decay.
  auto groups = vit.parameter_groups(0.1);
  CHECK(groups[0].names.front() == "patch_embedding.conv.weight");
  const std::vector<std::string> no_decay(groups[1].names.begin(), groups[1].names.begin() + 3);
  CHECK(no_decay == std::vector<std::string>{"cls_token", "pos_embedding", "patch_embedding.conv.bias"});
}
