// The training utilities against torch.optim (2.15, float64: the expected
// values below are what it gives for the same parameters, gradients and
// options): SGD with momentum, Nesterov and weight decay; parameter groups;
// global-norm clipping; the schedules; and saved optimizer states resuming
// bit for bit.
#include <catch2/catch.hpp>
#include <seemore/nn/embedding.hpp>
#include <seemore/nn/layernorm.hpp>
#include <seemore/nn/linear.hpp>
#include <seemore/optim/adam.hpp>
#include <seemore/optim/clip.hpp>
#include <seemore/optim/schedule.hpp>
#include <seemore/optim/state.hpp>

#include <cmath>
#include <cstdio>
#include <limits>

using namespace seemore;

namespace {
const std::vector<std::vector<double>> kGrads = {{0.3, -1.0, 2.0}, {0.1, 0.5, -0.2}, {-0.4, 0.0, 1.0}};

std::vector<double> sgd_run(optim::SGDOptions o) {
  auto p = Tensor<double>::from_vector({3}, {1.0, -2.0, 0.5}).requires_grad_();
  optim::SGD<double> opt({p}, o);
  for (auto& g : kGrads) {
    p.set_grad(Tensor<double>::from_vector({3}, g));
    opt.step();
  }
  return p.to_vector();
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double eps = 1e-13) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(eps));
}

// A small model of every parameter kind: linear weights and biases, a norm, an embedding.
struct Small : nn::Module<float> {
  explicit Small(Generator& g) {
    emb = register_module("emb", std::make_shared<nn::Embedding<float>>(5, 4, g));
    fc = register_module("fc", std::make_shared<nn::Linear<float>>(4, 3, true, g));
    ln = register_module("ln", std::make_shared<nn::LayerNorm<float>>(3));
  }
  Tensor<float> loss(const Tensor<int32_t>& ids) const {
    auto h = fc->forward(emb->forward(ids));
    return sum(mul(ln->forward(h), h));
  }
  std::shared_ptr<nn::Embedding<float>> emb;
  std::shared_ptr<nn::Linear<float>> fc;
  std::shared_ptr<nn::LayerNorm<float>> ln;
};

std::vector<float> flat_params(const nn::Module<float>& m) {
  std::vector<float> out;
  for (auto& [n, p] : m.named_parameters())
    for (float v : p.to_vector()) out.push_back(v);
  return out;
}
}  // namespace

TEST_CASE("optim: SGD with momentum, dampening, Nesterov and weight decay follows torch.optim", "[optim]") {
  optim::SGDOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.dampening = 0.1;
  o.weight_decay = 0.05;
  check_close(sgd_run(o), {0.91165854125, -1.7630167724999999, -0.10771222562500005});
  o.dampening = 0;
  o.nesterov = true;
  check_close(sgd_run(o), {0.9075518983749999, -1.71603303775, -0.33364637368750005});
  // Plain SGD is p − lr·g, step by step.
  auto plain = sgd_run(optim::SGDOptions{0.1, 0, 0, 0, false});
  CHECK(plain[0] == Approx(1.0 - 0.1 * (0.3 + 0.1 - 0.4)).epsilon(1e-15));
  // Nesterov without momentum is refused at construction, saying what to change.
  auto p = Tensor<double>::zeros({1}).requires_grad_();
  optim::SGDOptions bad;
  bad.nesterov = true;
  CHECK_THROWS_WITH((optim::SGD<double>({p}, bad)), Catch::Contains("Nesterov momentum needs momentum > 0"));
}

TEST_CASE("optim: parameter groups have their own lr and weight decay", "[optim]") {
  auto a = Tensor<double>::from_vector({3}, {1.0, -2.0, 0.5}).requires_grad_();
  auto b = Tensor<double>::from_vector({2}, {0.25, 4.0}).requires_grad_();
  std::vector<optim::ParamGroup<double>> groups(2);
  groups[0].params = {a};
  groups[1].params = {b};
  groups[1].lr = 0.01;
  groups[1].weight_decay = 0.0;
  optim::AdamW<double> opt(groups, {0.1, 0.8, 0.99, 1e-6, 0.05, true});
  for (auto& g : kGrads) {
    a.set_grad(Tensor<double>::from_vector({3}, g));
    b.set_grad(Tensor<double>::from_vector({2}, {3 * g[0], 3 * g[1]}));
    opt.step();
  }
  check_close(a.to_vector(), {0.8196475033010511, -1.8348397182747582, 0.2717155704231655});
  check_close(b.to_vector(), {0.23331514787320298, 4.013641319948123});
  CHECK(opt.groups()[1].lr == 0.01);
  CHECK(opt.param_names() == std::vector<std::string>{"0", "1"});
  // One tensor in two groups is an error naming it.
  std::vector<optim::ParamGroup<double>> twice(2);
  twice[0].params = {a};
  twice[1].params = {a};
  CHECK_THROWS_WITH((optim::SGD<double>(twice, optim::SGDOptions{})), Catch::Contains("'1' is given twice"));
}

TEST_CASE("optim: parameter_groups() keeps biases, norms and embeddings out of weight decay", "[optim]") {
  Generator gen(3);
  Small m(gen);
  auto groups = m.parameter_groups(0.1);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].names == std::vector<std::string>{"fc.weight"});
  CHECK(groups[0].weight_decay == 0.1);
  CHECK(groups[1].names == std::vector<std::string>{"emb.weight", "fc.bias", "ln.weight", "ln.bias"});
  CHECK(groups[1].weight_decay == 0.0);
  optim::AdamW<float> opt(groups);
  CHECK(opt.param_names() == std::vector<std::string>{"fc.weight", "emb.weight", "fc.bias", "ln.weight", "ln.bias"});
  CHECK(opt.groups()[1].weight_decay == 0.0);
}

TEST_CASE("optim: clip_grad_norm follows torch.nn.utils.clip_grad_norm_", "[optim]") {
  struct Case {
    double p, norm;
    std::vector<double> grads;
  };
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<Case> cases = {
      {2.0, 13.200378782444085,
       {1.1363309425346482, -1.5151079233795308, 0.3787769808448827, 0.7575539616897654, 0.18938849042244135, -4.545323770138593}},
      {1.0, 22.5,
       {0.6666666370370384, -0.8888888493827178, 0.22222221234567946, 0.4444444246913589, 0.11111110617283973, -2.6666665481481537}},
      {3.0, 12.227433116271866,
       {1.2267496072653947, -1.6356661430205264, 0.4089165357551316, 0.8178330715102632, 0.2044582678775658, -4.906998429061579}},
      {inf, 12.0,
       {1.249999895833342, -1.6666665277777895, 0.41666663194444736, 0.8333332638888947, 0.20833331597222368, -4.999999583333368}}};
  for (auto& c : cases) {
    auto x = Tensor<double>::zeros({2, 2}).requires_grad_();
    auto y = Tensor<double>::zeros({2}).requires_grad_();
    auto unused = Tensor<double>::zeros({2}).requires_grad_();  // no gradient: skipped
    x.set_grad(Tensor<double>::from_vector({2, 2}, {3.0, -4.0, 1.0, 2.0}));
    y.set_grad(Tensor<double>::from_vector({2}, {0.5, -12.0}));
    optim::ClipOptions o;
    o.norm_type = c.p;
    auto r = optim::clip_grad_norm<double>({x, unused, y}, 5.0, o);
    CHECK(r.norm == Approx(c.norm).epsilon(1e-14));
    CHECK(r.clipped);
    CHECK(r.finite());
    auto g = x.grad().to_vector();
    for (double v : y.grad().to_vector()) g.push_back(v);
    check_close(g, c.grads, 1e-13);
  }
  // Under the limit: untouched.
  auto z = Tensor<float>::zeros({2}).requires_grad_();
  z.set_grad(Tensor<float>::from_vector({2}, {0.3f, 0.4f}));
  auto r = optim::clip_grad_norm<float>({z}, 1.0);
  CHECK(!r.clipped);
  CHECK(r.norm == Approx(0.5).epsilon(1e-7));
  CHECK(z.grad().to_vector() == std::vector<float>{0.3f, 0.4f});
  // Non-finite: reported with the parameter at fault, gradients left as they were; or an error.
  Generator gen(1);
  Small m(gen);
  optim::SGD<float> opt(m.parameters(), 0.1);
  for (auto& p : m.parameters()) p.set_grad(Tensor<float>::ones(p.shape()));
  auto bad = m.fc->bias.grad();
  bad.data()[1] = std::numeric_limits<float>::quiet_NaN();
  auto named = m.named_parameters();
  std::vector<std::string> names;
  for (auto& [n, p] : named) names.push_back(n);
  r = optim::clip_grad_norm<float>(m.parameters(), 1.0, {}, names);
  CHECK(!r.finite());
  CHECK(r.nonfinite == "fc.bias");
  CHECK(std::isnan(r.norm));
  CHECK(m.fc->weight.grad().to_vector()[0] == 1.0f);
  optim::ClipOptions strict;
  strict.error_if_nonfinite = true;
  CHECK_THROWS_WITH(optim::clip_grad_norm<float>(m.parameters(), 1.0, strict, names),
                    Catch::Contains("first non-finite gradient is parameter 'fc.bias'"));
}

TEST_CASE("optim: schedules give torch.optim.lr_scheduler's rates", "[optim]") {
  auto p = Tensor<float>::zeros({1}).requires_grad_();
  auto q = Tensor<float>::zeros({1}).requires_grad_();
  std::vector<optim::ParamGroup<float>> groups(2);
  groups[0].params = {p};
  groups[1].params = {q};
  groups[1].lr = 0.05;
  optim::SGD<float> opt(groups, optim::SGDOptions{0.5});
  // LinearLR(1/4, 1, total_iters 3) then CosineAnnealingLR(T_max 10, eta_min 0.05), milestone 4.
  const std::vector<double> torch_lr = {0.125, 0.25, 0.375, 0.5, 0.5, 0.48898771616640957, 0.45702882373436315,
                                        0.40725168176580645, 0.34452882373436317, 0.275, 0.20547117626563688,
                                        0.1427483182341936, 0.09297117626563686, 0.06101228383359046, 0.05};
  auto s = optim::linear_warmup(4, optim::cosine(10, 0.1));
  for (int64_t step = 0; step < int64_t(torch_lr.size()); ++step) {
    s.apply(opt, step);
    CHECK(opt.groups()[0].lr == Approx(torch_lr[size_t(step)]).epsilon(1e-14));
    CHECK(opt.groups()[1].lr == Approx(torch_lr[size_t(step)] / 10).epsilon(1e-14));  // groups keep their ratio
  }
  CHECK(s(1000) == Approx(0.1));  // past the end: the floor
  const std::vector<double> torch_step = {0.5, 0.5, 0.5, 0.15, 0.15, 0.15, 0.045, 0.045, 0.045, 0.0135};
  auto d = optim::step_decay(3, 0.3);
  for (int64_t step = 0; step < 10; ++step) CHECK(0.5 * d(step) == Approx(torch_step[size_t(step)]).epsilon(1e-14));
  CHECK(optim::constant()(7) == 1.0);
  CHECK_THROWS_WITH(optim::cosine(0), Catch::Contains("steps > 0"));
  CHECK_THROWS_WITH(optim::cosine(10, 1.5), Catch::Contains("floor"));
}

TEST_CASE("optim: a saved optimizer state resumes bit for bit", "[optim]") {
  const std::string path = "test_optimizer_state.safetensors";
  auto ids = Tensor<int32_t>::from_vector({2, 3}, {0, 4, 2, 1, 3, 3});
  auto train = [&](nn::Module<float>& m, optim::Optimizer<float>& opt, const optim::Schedule& s, int64_t from,
                   int64_t to) {
    for (int64_t step = from; step < to; ++step) {
      s.apply(opt, step);
      opt.zero_grad();
      static_cast<Small&>(m).loss(ids).backward();
      optim::clip_grad_norm(opt, 0.5);
      opt.step();
    }
  };
  const auto sched = optim::linear_warmup(2, optim::cosine(6, 0.1));
  for (const char* kind : {"adamw", "sgd"}) {
    auto make = [&](Small& m) -> std::unique_ptr<optim::Optimizer<float>> {
      if (std::string(kind) == "adamw") return std::make_unique<optim::AdamW<float>>(m.parameter_groups(0.1));
      optim::SGDOptions o;
      o.lr = 0.05;
      o.momentum = 0.9;
      o.nesterov = true;
      return std::make_unique<optim::SGD<float>>(m.parameter_groups(0.01), o);
    };
    Generator g1(7), g2(7);
    Small straight(g1), resumed(g2);
    auto o1 = make(straight);
    train(straight, *o1, sched, 0, 8);
    {
      Generator g3(7);
      Small first(g3);
      auto o = make(first);
      train(first, *o, sched, 0, 3);
      optim::save_optimizer_state(path, *o);
      auto st = first.state_dict();
      resumed.load_state_dict({st.begin(), st.end()});
    }
    auto o2 = make(resumed);
    optim::load_optimizer_state(path, *o2);
    train(resumed, *o2, sched, 3, 8);
    INFO(kind);
    CHECK(flat_params(resumed) == flat_params(straight));
  }
  // A state for another optimizer or other parameters is refused, naming the file and the difference.
  Generator g(1);
  Small m(g);
  optim::SGD<float> sgd(m.parameter_groups(0.0), optim::SGDOptions{});
  optim::AdamW<float> adamw(m.parameters());
  optim::save_optimizer_state(path, sgd);
  CHECK_THROWS_WITH(optim::load_optimizer_state(path, adamw),
                    Catch::Contains(path + ": optimizer state: written by a '\"sgd\"' optimizer"));
  optim::SGD<float> other(m.parameters(), 0.1);
  CHECK_THROWS_WITH(optim::load_optimizer_state(path, other), Catch::Contains("differ at position 0: 'fc.weight'"));
  std::remove(path.c_str());
}
