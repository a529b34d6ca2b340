// seemore/train/step_graph.hpp — a VLM training step (forward, backward,
// Adam) captured once as a CUDA graph and replayed every step (nvcc only).
//
// At this model's sizes a GPU step is hundreds of short launches, and the
// GPU waits on the host between them; replayed from a graph the step is one
// launch. The step must then look the same every time (backend/cuda/graph.hpp):
// - static shapes: every batch is given padded to the same token length L;
//   the targets beyond a batch's own length are -100, so the loss and the
//   gradients are those of the batch at its own length;
// - static addresses: the inputs are copied into buffers made once; the
//   gradients go into DataParallel's flat buffer (one rank), whose views are
//   the same .grad tensors every step, so Adam's device table stays valid;
// - what changes per step lives in device memory the host refreshes before
//   each replay: Adam's bias corrections and learning rate (Adam::prepare),
//   and dropout's starting counter — while capturing, the model's generator
//   hands out counters relative to the step's start and the kernels add the
//   start from device memory (Generator::set_device_offset), so every step
//   draws the masks an eager step would draw.
// Step 1 runs eagerly with the graph's memory pool active (warm-up), step 2
// is captured and replayed, the rest replay. A capture that fails (something
// in the step a graph cannot hold) leaves the run eager, with the reason.
// Eager and graphed steps compute the same kernels on the same data: the
// results are bit-identical (tests/cuda/test_cuda.cu, on the emulated device
// in CI).
#pragma once

#include <seemore/backend/cuda/graph.hpp>
#include <seemore/distributed/data_parallel.hpp>
#include <seemore/nn/vlm.hpp>
#include <seemore/optim/adam.hpp>

#if SEEMORE_HAS_CUDA
#include <memory>
#include <string>

namespace seemore::train {

template <class T>
class StepGraph {
 public:
  // model and opt on one CUDA device; batches of B samples with L tokens.
  // use_graph = false: the same steps, eagerly (the reference it is tested against).
  StepGraph(nn::VisionLanguageModel<T>& model, optim::Adam<T>& opt, int64_t B, int64_t L, bool use_graph = true)
      : model_(model), opt_(opt), dev_(model.parameters().at(0).device()), B_(B), L_(L), use_graph_(use_graph),
        comm_(dev_), dp_(opt, comm_) {
    SEEMORE_CHECK(dev_.is_cuda(), "StepGraph: the model is on ", dev_.str(), "; CUDA graphs need a CUDA device");
    SEEMORE_CHECK(B > 0 && L > 0, "StepGraph: batch ", B, " and length ", L, " must be > 0");
    SEEMORE_CHECK(!backend::cuda::CachingAllocator::bypass(),
                  "StepGraph: SEEMORE_CUDA_NO_CACHE is set; a CUDA graph needs the caching allocator");
    const auto& c = model.config();
    images_ = Tensor<T>::empty({B, c.in_channels, c.img_size, c.img_size}, dev_);
    tokens_ = Tensor<int32_t>::empty({B, L}, dev_);
    targets_ = Tensor<int32_t>::empty({B, L + 1}, dev_);
    loss_ = Tensor<T>::empty({}, dev_);
    offset_ = Tensor<int32_t>::zeros({2}, dev_);  // one uint64_t: the step's first dropout counter
    graph_ = std::make_unique<backend::cuda::Graph>(dev_.index());
  }

  // One step on a batch given on the host: images [B, C, S, S], tokens
  // [B, L], targets [B, L + 1] one per decoder position (-100: not counted;
  // model.full_targets gives them). Returns the batch's loss.
  double step(const Tensor<T>& images, const Tensor<int32_t>& tokens, const Tensor<int32_t>& targets) {
    SEEMORE_CHECK(images.shape() == images_.shape() && tokens.shape() == tokens_.shape() &&
                      targets.shape() == targets_.shape(),
                  "StepGraph: a batch of ", to_string(images.shape()), ", ", to_string(tokens.shape()), ", ",
                  to_string(targets.shape()), "; the graph was made for ", to_string(images_.shape()), ", ",
                  to_string(tokens_.shape()), ", ", to_string(targets_.shape()));
    // The checks the ops make on the host, made here: while capturing they skip them.
    const int64_t V = model_.config().vocab_size;
    for (int32_t t : tokens.to_vector())
      SEEMORE_CHECK(t >= 0 && t < V, "StepGraph: token ", t, " outside the vocabulary of ", V);
    for (int32_t t : targets.to_vector())
      SEEMORE_CHECK(t == -100 || (t >= 0 && t < V), "StepGraph: target ", t, " outside the vocabulary of ", V);
    images_.copy_from(images);
    tokens_.copy_from(tokens);
    targets_.copy_from(targets);
    Generator& gen = model_.dropout_generator();
    if (!use_graph_ || steps_ == 0) {
      auto run = [&] {
        device_work();
        opt_.prepare();
        opt_.apply();
      };
      if (use_graph_) graph_->warm_up(run);
      else run();
    } else {
      opt_.prepare();  // the .grad views exist since the first step: the table points at them
      const uint64_t start = gen.offset();
      if (!graph_->captured()) {
        gen.set_state(gen.seed(), 0);
        gen.set_device_offset(reinterpret_cast<const uint64_t*>(offset_.data()));
        try {
          graph_->capture([&] {
            device_work();
            opt_.apply();
          });
          advance_ = gen.offset();
        } catch (const Error& e) {
          fallback_ = e.what();
        }
        gen.set_device_offset(nullptr);
        gen.set_state(gen.seed(), start);
        if (!fallback_.empty()) {  // stay eager; this step runs eagerly now
          use_graph_ = false;
          device_work();
          opt_.apply();
          ++steps_;
          return double(loss_.item());
        }
      }
      const uint64_t o = start;
      backend::cuda::copy_bytes(offset_.data(), true, &o, false, sizeof o, dev_.index());
      graph_->replay();
      gen.set_state(gen.seed(), start + advance_);
      ++replays_;
    }
    ++steps_;
    return double(loss_.item());
  }

  bool graphed() const { return graph_->captured() && use_graph_; }
  int64_t replays() const { return replays_; }
  // Why the run stayed eager ("" when it did not).
  const std::string& fallback_reason() const { return fallback_; }

 private:
  // The step's device work from the static inputs: forward, loss, backward
  // into the flat gradient buffer, the loss into loss_.
  void device_work() {
    auto logits = model_.forward(images_, tokens_).logits;
    auto loss = model_.loss_full(logits, targets_);
    dp_.backward_local(loss);
    loss_.copy_from(loss);
  }

  nn::VisionLanguageModel<T>& model_;
  optim::Adam<T>& opt_;
  Device dev_;
  int64_t B_, L_;
  bool use_graph_;
  distributed::LocalCommunicator comm_;
  distributed::DataParallel<T> dp_;
  Tensor<T> images_, loss_;
  Tensor<int32_t> tokens_, targets_, offset_;
  std::unique_ptr<backend::cuda::Graph> graph_;
  int64_t steps_ = 0, replays_ = 0;
  uint64_t advance_ = 0;
  std::string fallback_;
};

}  // namespace seemore::train
#endif
