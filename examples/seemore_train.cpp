// seemore-train: trains a vision-language model on image/caption data.
//
//   seemore-train --data inputs.csv --preset seemore --repeat 30 --steps 100 --out runs/ref
//
// Writes into --out: model.safetensors (weights under the reference's names,
// config and vocabulary in its metadata), train_state.safetensors (everything
// --resume needs: weights, Adam moments, step, random generator states),
// metrics.jsonl (one line per step, one per evaluation), loss.svg, config.json.
// Checkpoints are written atomically at every evaluation and at the end. The
// last line printed is "train_loss <v> val_loss <v>".
//
// Under an MPI launcher (mpirun -np N seemore-train ...; built with MPI) the
// ranks train one model: each computes its share of every global batch
// (docs/distributed.md); rank 0 alone prints and writes the files.
// --grad-accum K is the same split within one process.
#include <seemore/distributed.hpp>
#include <seemore/vlm.hpp>
#if SEEMORE_HAS_CUDA
#include <seemore/train/step_graph.hpp>
#endif

#include "device_relaunch.hpp"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <sstream>

using namespace seemore;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::vector<std::string> data;
  std::string preset = "seemore", config_file, out = "run", device = "cpu", vocab = "reference", optimizer = "adam";
  std::string init;
  int64_t repeat = 1, steps = 100, epochs = 0, batch_size = 16, val_batch_size = 8, eval_interval = 10, eval_iters = 40;
  int64_t threads = 0, max_pixels = int64_t(8192) * 8192, grad_accum = 1, ranks = 1;
  double collective_timeout = 600, bucket_mib = 1;
  bool no_overlap = false, cuda_graph = false;
  double lr = 1e-3, val_fraction = 0.1, weight_decay = 0.0, min_lr_ratio = 0.0, clip_grad_norm = 0.0;
  std::string schedule = "constant", decay = "all";
  int64_t warmup = 0;
  uint64_t seed = 0;
  bool resume = false, quiet = false, tf32 = false;
};

std::string fmt_time(double s) {
  char b[32];
  const long t = long(s + 0.5);
  std::snprintf(b, sizeof b, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  return b;
}

// FNV-1a over the training data as the model sees it: a resumed run must see the same data.
uint64_t fingerprint(const data::CaptionDataset<float>& ds) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(p)[i]) * 1099511628211ull;
  };
  for (auto& it : ds.items()) {
    mix(it.caption.data(), it.caption.size());
    mix(&it.image, sizeof it.image);
  }
  mix(ds.images().data(), size_t(ds.images().numel()) * sizeof(float));
  return h;
}

// batch_size distinct indices from `pool` (train: without replacement, as the reference).
std::vector<int64_t> sample_without_replacement(const std::vector<int64_t>& pool, int64_t k, Generator& g) {
  std::vector<int64_t> p = pool, out;
  for (int64_t i = 0; i < k; ++i) {
    const uint64_t j = uint64_t(i) + g.randint(uint64_t(p.size()) - uint64_t(i));
    std::swap(p[size_t(i)], p[size_t(j)]);
    out.push_back(p[size_t(i)]);
  }
  return out;
}
std::vector<int64_t> sample_with_replacement(const std::vector<int64_t>& pool, int64_t k, Generator& g) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < k; ++i) out.push_back(pool[size_t(g.randint(pool.size()))]);
  return out;
}

nn::VLMConfig make_config(const Args& a) {
  return a.config_file.empty() ? nn::VLMConfig::from_preset(a.preset) : nn::VLMConfig::from_file(a.config_file, a.preset);
}

data::CharTokenizer make_vocab(const Args& a, const nn::VLMConfig& cfg, const std::vector<data::RawSample>& raw) {
  const bool eos = cfg.eos_id >= 0;
  if (a.vocab == "reference") return data::CharTokenizer(data::reference_characters(), eos);
  std::vector<std::string> texts;
  if (a.vocab == "captions") {
    for (auto& r : raw) texts.push_back(r.caption);
  } else {
    texts.push_back(io::read_file_bytes(a.vocab, 1 << 30));
  }
  return data::CharTokenizer::from_texts(texts, eos);
}

struct State {
  int64_t step = 0;
  uint64_t train_offset = 0, val_offset = 0, dropout_offset = 0;
};

void save_state(const std::string& path, const nn::VisionLanguageModel<float>& m, optim::Adam<float>& opt,
                const State& s, const data::CharTokenizer& vocab, uint64_t fp) {
  std::vector<std::pair<std::string, Tensor<float>>> ts;
  for (auto& [name, p] : m.named_parameters()) ts.push_back({"param." + name, p.detach()});
  std::map<std::string, std::string> meta{{"format", "seemore-train-state"},
                                          {"config", m.config().to_json().dump()},
                                          {"vocab", vocab.to_json().dump()},
                                          {"step", std::to_string(s.step)},
                                          {"rng", nlohmann::json{s.train_offset, s.val_offset, s.dropout_offset}.dump()},
                                          {"data_fingerprint", std::to_string(fp)}};
  optim::add_optimizer_state(opt, ts, meta);  // "exp_avg.<name>", "exp_avg_sq.<name>", "optimizer"
  io::save_safetensors(path, ts, meta);
}

State load_state(const io::SafeTensors& st, const std::string& path, nn::VisionLanguageModel<float>& m,
                 optim::Adam<float>& opt, uint64_t fp) {
  auto meta = [&](const char* k) {
    auto it = st.metadata.find(k);
    SEEMORE_CHECK(it != st.metadata.end(), path, ": not a training state (no '", k, "' in its metadata)");
    return it->second;
  };
  SEEMORE_CHECK(meta("format") == "seemore-train-state", path, ": not a training state");
  SEEMORE_CHECK(meta("data_fingerprint") == std::to_string(fp), path,
                ": was trained on different data (or --repeat/--val-fraction); resume needs the same data");
  auto params = m.named_parameters();
  auto copy = [&](const std::string& name, Tensor<float> dst) {
    auto* t = st.find(name);
    SEEMORE_CHECK(t && t->shape() == dst.shape(), path, ": missing or misshapen '", name, "'");
    dst.copy_from(*t);
  };
  optim::read_optimizer_state(opt, st, path);  // checks it all before it changes anything
  for (auto& [name, p] : params) copy("param." + name, p);
  auto rng = nlohmann::json::parse(meta("rng"));
  State s;
  s.step = std::stoll(meta("step"));
  s.train_offset = rng[0].get<uint64_t>();
  s.val_offset = rng[1].get<uint64_t>();
  s.dropout_offset = rng[2].get<uint64_t>();
  return s;
}

// True when every gradient is finite. On a GPU one device-side sum answers
// (x·0 is NaN exactly when x is not finite), instead of copying every gradient.
bool gradients_finite(const nn::VisionLanguageModel<float>& m, Device dev) {
  if (dev.is_cpu()) {
    for (auto& [name, p] : m.named_parameters()) {
      const float* g = p.grad().data();
      for (int64_t i = 0; i < p.numel(); ++i)
        if (!std::isfinite(g[i])) return false;
    }
    return true;
  }
  Tensor<float> acc;
  for (auto& [name, p] : m.named_parameters()) {
    auto z = sum(affine(p.grad(), 0.0, 0.0));
    acc = acc.defined() ? add(acc, z) : z;
  }
  return !acc.defined() || std::isfinite(acc.item());
}

// Runs `fn` (this rank's part of the set-up: reading flags, data, files) on
// every rank, then makes its errors every rank's: one clear message, printed
// once, and every rank ends normally instead of some waiting for a rank that
// stopped.
template <class F>
void on_every_rank(distributed::Communicator& comm, F&& fn) {
  std::string err;
  try {
    fn();
  } catch (const std::exception& e) {
    err = e.what();
    if (err.rfind("[seemore] ", 0) == 0) err = err.substr(10);
    if (err.empty()) err = "error";
  }
  if (comm.size() == 1) {
    if (!err.empty()) throw Error("[seemore] " + err);
    return;
  }
  const auto all = comm.all_gather(err);
  std::string msg;
  for (size_t r = 0; r < all.size(); ++r) {
    if (all[r].empty()) continue;
    bool everywhere = true;
    for (auto& o : all) everywhere = everywhere && o == all[r];
    msg = everywhere ? all[r] : "rank " + std::to_string(r) + ": " + all[r];
    break;
  }
  if (!msg.empty()) throw distributed::CollectiveError("[seemore] " + msg);
}

int run(const Args& a, distributed::Communicator& comm, Device dev) {
  const bool lead = comm.rank() == 0;  // the rank that prints and writes
  const std::string state_path = a.out + "/train_state.safetensors", model_path = a.out + "/model.safetensors";
  nn::VLMConfig cfg;
  data::CharTokenizer vocab;
  std::vector<data::RawSample> raw;
  std::map<std::string, Tensor<float>> init_weights;
  std::unique_ptr<data::CaptionDataset<float>> dsp;
  std::vector<int64_t> train_idx, val_idx;
  int64_t steps = a.steps;
  uint64_t fp = 0;
  std::string state_bytes;  // the training state to resume from (read by rank 0, sent to all)
  bool resuming = false;

  on_every_rank(comm, [&] {
    backend::cpu::tune_allocator();
    if (a.threads > 0) {
      backend::cpu::set_num_threads(int(a.threads));
      Eigen::setNbThreads(int(a.threads));
    }
    SEEMORE_CHECK(a.batch_size > 0 && a.val_batch_size > 0, "--batch-size must be > 0");
    SEEMORE_CHECK(a.eval_interval > 0, "--eval-interval must be > 0");
    SEEMORE_CHECK(a.eval_iters >= 0, "--eval-iters must be >= 0");
    SEEMORE_CHECK(a.lr > 0, "--lr must be > 0");
    SEEMORE_CHECK(a.min_lr_ratio >= 0 && a.min_lr_ratio <= 1, "--min-lr-ratio must be in [0, 1]");
    SEEMORE_CHECK(a.warmup >= 0, "--warmup must be >= 0");
    SEEMORE_CHECK(a.clip_grad_norm >= 0, "--clip-grad-norm must be >= 0 (0: no clipping)");
    SEEMORE_CHECK(a.clip_grad_norm == 0 || !a.cuda_graph,
                  "--clip-grad-norm does not combine with --cuda-graph (the graph holds the optimizer's step)");
    SEEMORE_CHECK(a.grad_accum >= 1, "--grad-accum must be >= 1");
    SEEMORE_CHECK(a.bucket_mib > 0, "--bucket-mib must be > 0");
    SEEMORE_CHECK(!a.cuda_graph || dev.is_cuda(), "--cuda-graph needs --device cuda");
    SEEMORE_CHECK(!a.cuda_graph || (comm.size() == 1 && a.grad_accum == 1),
                  "--cuda-graph: one process and --grad-accum 1 (the graph holds one micro-batch on one GPU)");
    SEEMORE_CHECK(a.batch_size >= a.grad_accum * comm.size(), "--batch-size ", a.batch_size, " cannot be cut into ",
                  a.grad_accum * comm.size(), " micro-batches (", comm.size(), " rank", comm.size() > 1 ? "s" : "",
                  " x --grad-accum ", a.grad_accum, ")");
    if (lead) {
      SEEMORE_CHECK(!io::file_exists(a.out) || io::is_directory(a.out), a.out, ": --out exists and is not a directory");
      io::make_directories(a.out);
      for (const auto& p : {state_path, model_path, a.out + "/config.json", a.out + "/loss.svg"}) io::remove_stale_temps(p);
    }

    // ---- config, data, vocabulary
    cfg = make_config(a);
    for (auto& d : a.data) {
      auto r = data::read_samples(d);
      raw.insert(raw.end(), r.begin(), r.end());
    }
    vocab = make_vocab(a, cfg, raw);
  });
  // The state to resume from: rank 0's file, on every rank (other machines need not have it).
  if (a.resume) {
    on_every_rank(comm, [&] {
      if (lead && io::file_exists(state_path)) state_bytes = io::read_file_bytes(state_path);
    });
    state_bytes = comm.broadcast(state_bytes, 0);
    resuming = !state_bytes.empty();
  }
  on_every_rank(comm, [&] {
    // --init: the weights, config and vocabulary of a checkpoint (ours, or a
    // PyTorch reference state dict whose sizes are read from its tensors);
    // --config, when given, must describe it exactly. A resumed run has moved on
    // from them and loads its own state instead.
    if (!a.init.empty() && !resuming) {
      SEEMORE_CHECK(a.vocab == "reference", "--vocab ", a.vocab, " conflicts with --init: the run uses ", a.init,
                    "'s vocabulary");
      std::optional<nn::VLMConfig> exact;
      if (!a.config_file.empty()) exact = cfg;
      auto loaded = io::load_checkpoint<float>(a.init, exact, a.preset);
      cfg = loaded.model->config();
      vocab = loaded.vocab;
      for (auto& [name, t] : loaded.model->state_dict()) init_weights[name] = t;
    }
    if (resuming) {  // the run's own config and vocabulary win
      auto st = io::parse_safetensors(state_bytes, state_path);
      SEEMORE_CHECK(st.metadata.count("config") && st.metadata.count("vocab"), state_path, ": not a training state");
      cfg = nn::VLMConfig::from_json(nlohmann::json::parse(st.metadata["config"]), state_path);
      vocab = data::CharTokenizer::from_json(nlohmann::json::parse(st.metadata["vocab"]), state_path);
    }
    cfg.vocab_size = vocab.vocab_size();
    cfg.pad_id = vocab.pad_id();
    cfg.eos_id = vocab.eos_id();
    cfg.validate();
    data::ImageLimits lim;
    lim.max_pixels = a.max_pixels;
    dsp = std::make_unique<data::CaptionDataset<float>>(raw, cfg, vocab, lim);
    dsp->repeat(a.repeat);
    auto split = dsp->split(a.val_fraction);
    train_idx = split.first;
    val_idx = split.second;
    SEEMORE_CHECK(!train_idx.empty(), "no training samples after the split (", dsp->size(), " samples, val-fraction ",
                  a.val_fraction, ")");
    SEEMORE_CHECK(a.batch_size <= int64_t(train_idx.size()), "--batch-size ", a.batch_size, " exceeds the ",
                  train_idx.size(), " training samples (batches are drawn without replacement; use --repeat or a smaller batch)");
    if (a.epochs > 0) steps = a.epochs * ((int64_t(train_idx.size()) + a.batch_size - 1) / a.batch_size);
    fp = fingerprint(*dsp) ^ uint64_t(a.repeat) * 31 ^ uint64_t(train_idx.size()) * 131;
  });
  const data::CaptionDataset<float>& ds = *dsp;
  // Every rank must train the same thing: a rank started with other flags or
  // other data is an error here, before step 1, not a silent divergence.
  distributed::check_same(comm, "the model config", cfg.to_json().dump(), "every rank needs the same --preset/--config/--init");
  distributed::check_same(comm, "the vocabulary", vocab.to_json().dump(), "every rank needs the same --vocab and data");
  distributed::check_same(comm, "the training data", std::to_string(fp) + "/" + std::to_string(ds.size()),
                          "every rank must read the same --data files (same contents), --repeat and --val-fraction");
  const std::vector<std::pair<const char*, nlohmann::json>> flags{
      {"--steps/--epochs", steps}, {"--batch-size", a.batch_size}, {"--val-batch-size", a.val_batch_size},
      {"--lr", a.lr}, {"--schedule", a.schedule}, {"--warmup", a.warmup}, {"--min-lr-ratio", a.min_lr_ratio},
      {"--optimizer", a.optimizer}, {"--weight-decay", a.weight_decay}, {"--decay", a.decay},
      {"--clip-grad-norm", a.clip_grad_norm}, {"--seed", a.seed},
      {"--eval-interval", a.eval_interval}, {"--eval-iters", a.eval_iters}, {"--grad-accum", a.grad_accum},
      {"--resume", a.resume}, {"--device", dev.is_cuda() ? "cuda" : "cpu"}, {"--bucket-mib", a.bucket_mib},
      {"--no-overlap", a.no_overlap}};
  for (auto& [flag, value] : flags)
    distributed::check_same(comm, flag, value.dump(), "launch every rank with the same flags");

  // ---- model and optimizer
  nn::VisionLanguageModel<float> model(cfg, a.seed);
  if (!init_weights.empty()) model.load_state_dict(init_weights);
  model.to(dev);  // before the optimizer: its moments live where the parameters do
  optim::AdamOptions ao;
  ao.lr = a.lr;
  ao.weight_decay = a.weight_decay;
  SEEMORE_CHECK(a.optimizer == "adam" || a.optimizer == "adamw", "--optimizer: expected adam or adamw");
  ao.decoupled = a.optimizer == "adamw";
  // --decay weights: norms, biases and embeddings keep their values (optim's usual rule).
  optim::Adam<float> opt(a.decay == "weights" ? model.parameter_groups(a.weight_decay)
                                              : std::vector<optim::ParamGroup<float>>{model.parameter_group()},
                         ao);
  Generator train_gen(a.seed * 2 + 11), val_gen(a.seed * 2 + 12);
  State s;
  if (resuming) {
    on_every_rank(comm, [&] { s = load_state(io::parse_safetensors(state_bytes, state_path), state_path, model, opt, fp); });
    state_bytes.clear();
    train_gen.set_state(train_gen.seed(), s.train_offset);
    val_gen.set_state(val_gen.seed(), s.val_offset);
    model.dropout_generator().set_state(model.dropout_generator().seed(), s.dropout_offset);
    if (lead) std::fprintf(stderr, "resuming %s at step %lld\n", state_path.c_str(), static_cast<long long>(s.step));
  } else if (a.resume && lead) {
    std::fprintf(stderr, "no %s: starting from scratch\n", state_path.c_str());
  }
  distributed::DataParallelOptions dpo;
  dpo.bucket_bytes = size_t(a.bucket_mib * double(1 << 20));
  dpo.overlap = !a.no_overlap;
  // --cuda-graph: every batch padded to the longest training caption, the
  // step captured once and replayed (train/step_graph.hpp); else the
  // data-parallel step (one process: the same, in micro-batches if asked).
  std::unique_ptr<distributed::DataParallel<float>> dpp;
  const int64_t Lmax = ds.max_length(train_idx);
#if SEEMORE_HAS_CUDA
  std::unique_ptr<train::StepGraph<float>> graph;
  if (a.cuda_graph) graph = std::make_unique<train::StepGraph<float>>(model, opt, a.batch_size, Lmax);
#endif
  if (!a.cuda_graph) dpp = std::make_unique<distributed::DataParallel<float>>(opt, comm, dpo);  // rank 0's parameters on every rank
  if (lead) io::write_file_atomic(a.out + "/config.json", cfg.to_json().dump(2) + "\n");

  // ---- metrics: keep the lines of steps before the resume point
  const std::string metrics_path = a.out + "/metrics.jsonl";
  std::ofstream mout;
  if (lead) {
    std::vector<nlohmann::json> metrics;
    if (s.step > 0 && io::file_exists(metrics_path)) {
      std::istringstream in(io::read_file_bytes(metrics_path));
      for (std::string line; std::getline(in, line);) {
        try {
          auto j = nlohmann::json::parse(line);
          if (j.value("step", int64_t(1) << 60) < s.step || (j.value("eval", false) && j.value("step", int64_t(1) << 60) <= s.step))
            metrics.push_back(j);
        } catch (const nlohmann::json::exception&) {
        }
      }
    }
    mout.open(metrics_path, std::ios::trunc);
    for (auto& j : metrics) mout << j.dump() << "\n";
    mout.flush();
    std::fprintf(stderr, "model: %s preset, %lld parameters; data: %lld samples (%lld images), %zu train / %zu val\n",
                 cfg.preset.c_str(), static_cast<long long>(model.num_parameters()), static_cast<long long>(ds.size()),
                 static_cast<long long>(ds.num_images()), train_idx.size(), val_idx.size());
    if (comm.size() > 1 || a.grad_accum > 1)
      std::fprintf(stderr, "batch: %lld samples a step = %d rank%s x %lld micro-batch%s (%s, %d bucket%s of gradients)\n",
                   static_cast<long long>(a.batch_size), comm.size(), comm.size() > 1 ? "s" : "",
                   static_cast<long long>(a.grad_accum), a.grad_accum > 1 ? "es" : "", comm.name().c_str(),
                   dpp->buckets(), dpp->buckets() > 1 ? "s" : "");
    if (a.cuda_graph)
      std::fprintf(stderr, "steps replayed from a CUDA graph: every batch padded to %lld characters\n",
                   static_cast<long long>(Lmax));
  }

  // Validation: the same batches on every rank (one val_gen stream), each
  // rank computing a contiguous share; the losses are added in batch order,
  // so the figure does not depend on the number of ranks.
  auto evaluate = [&]() -> double {
    if (val_idx.empty() || a.eval_iters == 0) return std::nan("");
    NoGradGuard ng;
    model.eval();
    std::vector<std::vector<int64_t>> batches;
    for (int64_t i = 0; i < a.eval_iters; ++i) batches.push_back(sample_with_replacement(val_idx, a.val_batch_size, val_gen));
    std::vector<double> losses(size_t(a.eval_iters), 0.0);
    const int64_t N = comm.size(), r = comm.rank();
    for (int64_t i = r * a.eval_iters / N; i < (r + 1) * a.eval_iters / N; ++i) {
      auto b = ds.batch(batches[size_t(i)]);
      losses[size_t(i)] = model.forward(b.images.to(dev), b.tokens.to(dev), b.targets.to(dev)).loss.item();
    }
    distributed::sum_over_ranks(comm, losses);
    model.train();
    double sum = 0;
    for (double l : losses) sum += l;
    return sum / double(a.eval_iters);
  };
  auto checkpoint = [&]() {
    if (dpp) dpp->check_in_sync("at step " + std::to_string(s.step));
    if (!lead) return;
    s.train_offset = train_gen.offset();
    s.val_offset = val_gen.offset();
    s.dropout_offset = model.dropout_generator().offset();
    save_state(state_path, model, opt, s, vocab, fp);
    io::save_checkpoint(model_path, model, vocab, {{"step", std::to_string(s.step)}});
  };

  const bool tty = lead && ::isatty(2) && !a.quiet;
  auto t0 = Clock::now();
  double window = 0, last_train = std::nan(""), last_val = std::nan("");
  double step_time = 0, wait_time = 0;
  int64_t in_window = 0;
  const int64_t first = s.step;
  model.train();
  // Linear warmup, then constant or cosine decay to min_lr_ratio·lr.
  const auto schedule = optim::linear_warmup(
      a.warmup, a.schedule == "cosine" ? optim::cosine(std::max<int64_t>(1, steps - a.warmup), a.min_lr_ratio)
                                       : optim::constant());
  double clipped_norm = std::nan("");
  while (s.step < steps) {
    const auto ts = Clock::now();
    schedule.apply(opt, s.step);
    // The global batch, the same on every rank; each micro-batch is a run of
    // it, padded to the global batch's length and divided by its count.
    const auto idx = sample_without_replacement(train_idx, a.batch_size, train_gen);
    const int64_t L = ds.max_length(idx);
    const int64_t count = model.loss_count(ds.batch(idx, L, false).targets);
    double loss = 0;
    if (dpp) {
      loss = dpp->compute_gradients(a.batch_size, a.grad_accum, [&](const distributed::MicroBatch& mb) {
        const std::vector<int64_t> mine(idx.begin() + mb.begin, idx.begin() + mb.begin + mb.count);
        auto b = ds.batch(mine, L);
        return model.forward(b.images.to(dev), b.tokens.to(dev), b.targets.to(dev), count).loss;
      }, &model.dropout_generator());
    } else {
#if SEEMORE_HAS_CUDA
      // Padded to Lmax; the positions past the batch's own length count for nothing.
      auto b = ds.batch(idx, Lmax);
      auto full = model.full_targets(b.targets, Lmax + 1);
      for (int64_t r = 0; r < a.batch_size; ++r)
        for (int64_t t = L + 1; t <= Lmax; ++t) full[size_t(r * (Lmax + 1) + t)] = -100;
      loss = graph->step(b.images, b.tokens, Tensor<int32_t>::from_vector({a.batch_size, Lmax + 1}, full));
      if (s.step == first + 1 && !graph->fallback_reason().empty() && lead)
        std::fprintf(stderr, "--cuda-graph: staying eager: %s\n", graph->fallback_reason().c_str());
#endif
    }
    SEEMORE_CHECK(std::isfinite(loss), "step ", s.step, ": the loss is ", loss,
                  "; stopping (the last checkpoint in ", a.out, " is untouched)");
    // Clipping reads every gradient anyway and names the first non-finite one
    // (leaving them all unscaled): then it is the check, not a second pass.
    std::string nonfinite;
    if (a.clip_grad_norm > 0) {
      const auto clip = optim::clip_grad_norm(opt, a.clip_grad_norm);
      clipped_norm = clip.norm;
      nonfinite = clip.nonfinite;
    } else if (!gradients_finite(model, dev)) {
      for (auto& [name, p] : model.named_parameters()) {
        const auto g = p.grad().to_vector();
        if (nonfinite.empty() && std::any_of(g.begin(), g.end(), [](float v) { return !std::isfinite(v); }))
          nonfinite = name;
      }
    }
    SEEMORE_CHECK(nonfinite.empty(), "step ", s.step, ": non-finite gradient in '", nonfinite,
                  "'; stopping (the last checkpoint in ", a.out, " is untouched)");
    opt.step();
    step_time += std::chrono::duration<double>(Clock::now() - ts).count();
    if (dpp) wait_time += dpp->stats().wait_s;
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    const double sps = double((s.step - first + 1) * a.batch_size) / std::max(elapsed, 1e-9);
    if (lead) {
      nlohmann::json line{{"step", s.step}, {"loss", loss}, {"lr", opt.lr()}, {"elapsed_s", elapsed}};
      if (a.clip_grad_norm > 0) line["grad_norm"] = clipped_norm;  // before clipping
      mout << line.dump() << "\n";
    }
    window += loss;
    ++in_window;
    ++s.step;
    if (tty) {
      const double eta = elapsed / double(s.step - first) * double(steps - s.step);
      const int filled = int(30 * s.step / steps);
      std::fprintf(stderr, "\r[%s%s] step %lld/%lld  loss %.4f  %.1f samples/s  ETA %s ", std::string(size_t(filled), '#').c_str(),
                   std::string(size_t(30 - filled), '.').c_str(), static_cast<long long>(s.step),
                   static_cast<long long>(steps), loss, sps, fmt_time(eta).c_str());
    }
    if (s.step % a.eval_interval == 0 || s.step == steps) {
      last_train = window / double(in_window);
      window = 0;
      in_window = 0;
      last_val = evaluate();
      if (lead) {
        nlohmann::json ev{{"step", s.step}, {"eval", true}, {"train_loss", last_train}, {"samples_per_s", sps}};
        if (std::isfinite(last_val)) ev["val_loss"] = last_val;
        mout << ev.dump() << "\n";
        mout.flush();
      }
      checkpoint();
      if (tty) std::fprintf(stderr, "\n");
      if (lead && !a.quiet)
        std::fprintf(stderr, "step %lld: train_loss %.4f val_loss %.4f (%.1f samples/s)\n", static_cast<long long>(s.step),
                     last_train, last_val, sps);
    }
  }
  if (steps == 0 && first == 0) {  // --steps 0: the starting model (say --init's, now with config and vocabulary)
    last_val = evaluate();
    if (lead) {
      nlohmann::json ev{{"step", 0}, {"eval", true}};
      if (std::isfinite(last_val)) ev["val_loss"] = last_val;
      mout << ev.dump() << "\n";
    }
    checkpoint();
  }
  if (!lead) return 0;
  mout.close();
  if (comm.size() > 1 && s.step > first)
    std::fprintf(stderr, "data parallel: %.4f s a step, %.4f s of it (%.1f%%) waiting for sums after the backward, "
                 "%.2f MiB summed a step\n", step_time / double(s.step - first), wait_time / double(s.step - first),
                 100.0 * wait_time / std::max(step_time, 1e-12), double(dpp->stats().bytes) / double(1 << 20));

  // ---- the loss curve from the whole metrics file
  io::Series tr{"train (per step)", "#1f77b4", {}}, va{"validation", "#d62728", {}};
  {
    std::istringstream in(io::read_file_bytes(metrics_path));
    for (std::string line; std::getline(in, line);) {
      // metrics.jsonl is a log, not a checkpoint: a line cut by a kill is skipped.
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("step")) continue;
      if (j.value("eval", false)) {
        if (j.contains("val_loss")) va.points.push_back({j["step"].get<double>(), j["val_loss"].get<double>()});
      } else {
        tr.points.push_back({j["step"].get<double>(), j["loss"].get<double>()});
      }
    }
  }
  io::write_file_atomic(a.out + "/loss.svg", io::svg_line_chart("seemore-train: " + cfg.preset + " preset", "step",
                                                                "cross-entropy loss", {tr, va}));
  if (s.step == first && first > 0) {  // nothing to do: report the saved state
    std::fprintf(stderr, "already at step %lld\n", static_cast<long long>(s.step));
  }
  std::printf("train_loss %.6f val_loss %.6f\n", last_train, last_val);
  return 0;
}

// A rank ended by a signal says so (the launcher stops every rank when one is
// lost), unless it was ending anyway after an error every rank saw.
char g_stop_msg[96];
volatile std::sig_atomic_t g_ending = 0;
void on_stop_signal(int sig) {
  if (g_ending) std::_Exit(1);
  const ssize_t n = ::write(2, g_stop_msg, std::strlen(g_stop_msg));
  (void)n;
  std::_Exit(128 + sig);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"seemore-train: train a vision-language model on image/caption data"};
  app.add_option("--data", a.data, "reference CSV (b64string_images,caption) or JSONL manifest; repeatable")->required();
  app.add_option("--preset", a.preset, "seemore (the reference, quirks included) or standard")
      ->check(CLI::IsMember({"seemore", "standard"}));
  app.add_option("--config", a.config_file, "model config JSON (fields of VLMConfig; overrides the preset)");
  app.add_option("--repeat", a.repeat, "duplicate the rows N times (the reference uses 30)");
  app.add_option("--val-fraction", a.val_fraction, "the last fraction of rows (in order) validates");
  app.add_option("--steps", a.steps, "training steps");
  app.add_option("--epochs", a.epochs, "if > 0: steps = epochs × ceil(train samples / batch size)");
  app.add_option("--batch-size", a.batch_size, "training batch (drawn without replacement)");
  app.add_option("--val-batch-size", a.val_batch_size, "validation batch (drawn with replacement)");
  app.add_option("--lr", a.lr, "learning rate");
  app.add_option("--schedule", a.schedule, "learning rate after warmup: constant or cosine (decays to --min-lr-ratio·lr)")
      ->check(CLI::IsMember({"constant", "cosine"}));
  app.add_option("--warmup", a.warmup, "linear warmup steps");
  app.add_option("--min-lr-ratio", a.min_lr_ratio, "cosine: final learning rate as a fraction of --lr");
  app.add_option("--optimizer", a.optimizer, "adam or adamw")->check(CLI::IsMember({"adam", "adamw"}));
  app.add_option("--weight-decay", a.weight_decay, "L2 (adam) or decoupled (adamw) weight decay");
  app.add_option("--decay", a.decay, "which parameters --weight-decay applies to: all (the reference) or weights "
                                     "(not biases, norms or embeddings)")
      ->check(CLI::IsMember({"all", "weights"}));
  app.add_option("--clip-grad-norm", a.clip_grad_norm,
                 "clip the gradients' global L2 norm to this before each step (0: off); metrics.jsonl logs the norm");
  app.add_option("--seed", a.seed, "seed of initialisation, sampling and dropout");
  app.add_option("--eval-interval", a.eval_interval, "evaluate, log and checkpoint every N steps");
  app.add_option("--eval-iters", a.eval_iters, "validation batches per evaluation");
  app.add_option("--init", a.init,
                 "start from this checkpoint's weights, config and vocabulary (ours, or a PyTorch reference state "
                 "dict, torch.save or safetensors: sizes from its tensors, quirks from --preset)");
  app.add_option("--vocab", a.vocab, "reference (65 characters), captions (built from the data) or a text file");
  app.add_option("--grad-accum", a.grad_accum,
                 "micro-batches per step and rank: the batch is computed in K parts, the step is the same");
  app.add_option("--ranks", a.ranks,
                 "train as N processes on this machine: the same command under mpirun -np N (see docs/distributed.md "
                 "for several machines)");
  app.add_option("--collective-timeout", a.collective_timeout,
                 "MPI/NCCL runs: seconds a rank waits for the others before stopping with an error");
  app.add_option("--bucket-mib", a.bucket_mib, "MPI/NCCL runs: MiB of gradients summed together");
  app.add_flag("--no-overlap", a.no_overlap, "MPI/NCCL runs: sum the gradients after the backward, not during it");
  app.add_flag("--cuda-graph", a.cuda_graph,
               "cuda: capture the training step as one CUDA graph and replay it (batches padded to the longest caption)");
  app.add_option("--device", a.device, "cpu, cuda or cuda:N");
  app.add_flag("--tf32", a.tf32, "cuda: TF32 tensor-core GEMMs (faster, ~1e-3 relative error; off: exact fp32)");
  app.add_option("--threads", a.threads, "CPU threads (default: all cores)");
  app.add_option("--max-pixels", a.max_pixels, "refuse images whose header claims more pixels");
  app.add_option("--out", a.out, "output directory");
  app.add_flag("--resume", a.resume, "continue from --out/train_state.safetensors (bit-identical)");
  app.add_flag("--quiet", a.quiet, "no progress output");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::unique_ptr<distributed::Communicator> comm;
  try {
    tools::relaunch_as_ranks(a.ranks, argc, argv);
    tools::relaunch_for_device(a.device, argv);
    SEEMORE_CHECK(a.device == "cpu" || a.device.rfind("cuda", 0) == 0, "--device: expected cpu or cuda, got '", a.device, "'");
    Device dev = Device::parse(a.device);
    if (dev.is_cuda() && distributed::launcher_ranks() > 1) {  // one GPU per rank on each machine
      const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
      if (!local) local = std::getenv("MPI_LOCALRANKID");
      if (local && a.device == "cuda") dev = Device::cuda(std::atoi(local));
    }
    dev = tools::open_device(dev.str(), a.tf32);
    comm = distributed::connect(&argc, &argv, dev);
    comm->set_timeout(a.collective_timeout);
    if (comm->size() > 1) {
      std::snprintf(g_stop_msg, sizeof g_stop_msg, "seemore-train: rank %d: stopped by a signal\n", comm->rank());
      std::signal(SIGTERM, on_stop_signal);
      std::signal(SIGINT, on_stop_signal);
    }
    backend::cpu::use_blas_from_env();  // a bad SEEMORE_BLAS is reported before any work
    return run(a, *comm, dev);
  } catch (const distributed::CollectiveError& e) {
    // Every rank stopped here alike: rank 0 says why, all end normally.
    g_ending = 1;
    if (!comm || comm->rank() == 0) std::fprintf(stderr, "seemore-train: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    if (comm && comm->size() > 1) {
      // This rank alone: the others would wait for it, so the run is ended.
      const std::string m = e.what();
      if (m.rfind("[seemore] rank ", 0) == 0) std::fprintf(stderr, "seemore-train: %s\n", m.c_str());
      else std::fprintf(stderr, "seemore-train: rank %d: %s\n", comm->rank(), m.c_str());
      std::fflush(stderr);
      comm->abort(1);
    }
    std::fprintf(stderr, "seemore-train: %s\n", e.what());
    return 1;
  }
}
