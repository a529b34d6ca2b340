// MpiCommunicator and DataParallel across real MPI ranks: run by ctest as
// `mpirun -np 3 seemore_mpi_tests`. A plain program, not Catch2: every rank
// must run every collective in the same order, whatever fails, so checks
// record failures and the ranks agree on the result at the end.
#include <seemore/distributed.hpp>
#include <seemore/vlm.hpp>

#include <cstdio>
#include <cstring>
#include <thread>

using namespace seemore;
using namespace seemore::distributed;

namespace {
int failures = 0;
int my_rank = 0;
#define EXPECT(cond, ...)                                                       \
  do {                                                                          \
    if (!(cond)) {                                                              \
      ++failures;                                                               \
      std::fprintf(stderr, "rank %d: FAILED %s:%d: %s\n", my_rank, __FILE__, __LINE__, #cond); \
    }                                                                           \
  } while (0)

// Values whose sum depends on the order of addition in float: 1e8 + 1 − 1e8.
std::vector<float> rank_values(int rank, size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (rank % 3 == 0) ? 1e8f * float(1 + i % 3) : (rank % 3 == 1 ? 1.0f + float(i % 7) * 0.1f : -1e8f);
  return v;
}

void test_rank_order_sum(MpiCommunicator& c) {
  const int N = c.size();
  for (size_t n : {size_t(1), size_t(2), size_t(7), size_t(1000), size_t(65537)}) {
    auto mine = rank_values(c.rank(), n);
    // The oracle: the ranks' values added left to right, rank 0 first.
    std::vector<float> want = rank_values(0, n);
    for (int r = 1; r < N; ++r) {
      const auto v = rank_values(r, n);
      for (size_t i = 0; i < n; ++i) want[i] += v[i];
    }
    c.all_reduce(mine.data(), n);
    EXPECT(std::memcmp(mine.data(), want.data(), n * sizeof(float)) == 0);
  }
  // Doubles.
  std::vector<double> d{double(c.rank()) + 0.25, -1.0};
  c.all_reduce(d.data(), d.size());
  EXPECT(d[0] == N * (N - 1) / 2.0 + 0.25 * N && d[1] == -double(N));
}

void test_many_in_flight(MpiCommunicator& c) {
  // Sums started together and waited for in reverse: the second phases still
  // go in start order on every rank (else the ranks' collectives would mismatch).
  const int K = 6;
  std::vector<std::vector<float>> bufs;
  for (int k = 0; k < K; ++k) bufs.push_back(std::vector<float>(size_t(100 * (k + 1)), float(c.rank() + k)));
  std::vector<std::unique_ptr<Pending>> pending;
  for (int k = 0; k < K; ++k) pending.push_back(c.start_all_reduce(bufs[size_t(k)].data(), bufs[size_t(k)].size()));
  if (c.rank() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // one rank late
  for (int k = K - 1; k >= 0; --k) pending[size_t(k)]->wait();
  const int N = c.size();
  for (int k = 0; k < K; ++k)
    for (float v : bufs[size_t(k)]) EXPECT(v == float(N * (N - 1) / 2 + N * k));
}

void test_host_collectives(MpiCommunicator& c) {
  const std::string mine(size_t(c.rank()) * 3, char('a' + c.rank()));  // rank 0 sends nothing
  const auto all = c.all_gather(mine);
  EXPECT(int(all.size()) == c.size());
  for (int r = 0; r < c.size(); ++r) EXPECT(all[size_t(r)] == std::string(size_t(r) * 3, char('a' + r)));
  const std::string big(3 << 20, 'x');
  EXPECT(c.broadcast(c.rank() == 1 ? big : "", 1) == big);
  EXPECT(c.broadcast(c.rank() == 0 ? "" : "ignored", 0).empty());
  c.barrier();
  // A check over ranks fails on every rank alike.
  bool threw = false;
  try {
    check_same(c, "the answer", c.rank() == 2 ? "41" : "42", "hint");
  } catch (const CollectiveError& e) {
    threw = std::string(e.what()).find("rank 2 and rank 0 disagree on the answer: hint") != std::string::npos;
  }
  EXPECT(threw == (c.size() > 2));
  check_same(c, "the same", "x");  // does not throw
}

// DataParallel over the ranks against one process accumulating the same
// micro-batches: with one micro-batch per rank, bit for bit.
void test_data_parallel(MpiCommunicator& c) {
  auto cfg = nn::VLMConfig::from_preset("standard");
  cfg.img_size = 16;
  cfg.patch_size = 8;
  cfg.image_embed_dim = 12;
  cfg.num_blks = 1;
  cfg.n_embd = 12;
  cfg.n_layer = 2;
  cfg.n_head = 3;
  cfg.block_size = 32;
  cfg.dropout = 0.2;
  cfg.validate();
  const int64_t B = 7, L = 6;
  Generator data(21);
  auto images = Tensor<float>::randn({B, 3, 16, 16}, data);
  std::vector<int32_t> tok, tgt;
  for (int64_t i = 0; i < B * L; ++i) tok.push_back(int32_t(3 + (i * 5) % 50));
  for (int64_t i = 0; i < B * (L + 1); ++i) tgt.push_back(i % (L + 1) == L ? int32_t(cfg.eos_id) : int32_t(4 + (i * 3) % 50));
  auto tokens = Tensor<int32_t>::from_vector({B, L}, tok), targets = Tensor<int32_t>::from_vector({B, L + 1}, tgt);
  auto run = [&](Communicator& comm, int64_t accum, std::vector<std::vector<float>>& grads, double& loss,
                 uint64_t& hash, size_t bucket) {
    nn::VisionLanguageModel<float> m(cfg, 8);
    m.train();
    optim::Adam<float> opt(m.parameters());
    DataParallelOptions o;
    o.bucket_bytes = bucket;
    DataParallel<float> dp(opt, comm, o);
    const int64_t count = m.loss_count(targets);
    for (int step = 0; step < 2; ++step) {
      loss = dp.step(B, accum, [&](const MicroBatch& mb) {
        return m.forward(images.rows(mb.begin, mb.begin + mb.count).clone(),
                         tokens.rows(mb.begin, mb.begin + mb.count).clone(),
                         targets.rows(mb.begin, mb.begin + mb.count).clone(), count).loss;
      }, &m.dropout_generator());
    }
    grads.clear();
    for (auto& p : m.parameters()) grads.push_back(p.grad().to_vector());
    hash = dp.parameter_hash();
    dp.check_in_sync("after two steps");
  };
  for (size_t bucket : {size_t(256), size_t(1) << 20}) {
    std::vector<std::vector<float>> got, want;
    double loss_got = 0, loss_want = 0;
    uint64_t hash_got = 0, hash_want = 0;
    run(c, 1, got, loss_got, hash_got, bucket);
    LocalCommunicator local;
    run(local, c.size(), want, loss_want, hash_want, bucket);
    EXPECT(loss_got == loss_want);
    EXPECT(got == want);
    EXPECT(hash_got == hash_want);
  }
  // A rank whose parameters drift is caught.
  nn::VisionLanguageModel<float> m(cfg, 8);
  optim::SGD<float> opt(m.parameters(), 0.1);
  DataParallel<float> dp(opt, c);
  if (c.rank() == c.size() - 1) {
    auto p = m.parameters()[0];
    auto v = p.to_vector();
    v[0] += 1e-6f;
    p.copy_from(Tensor<float>::from_vector(p.shape(), v));
  }
  bool caught = false;
  try {
    dp.check_in_sync("at step 3");
  } catch (const CollectiveError& e) {
    caught = std::string(e.what()).find("disagree on the parameters at step 3") != std::string::npos;
  }
  EXPECT(caught);
}
}  // namespace

int main(int argc, char** argv) {
  MpiCommunicator c(&argc, &argv);
  c.set_timeout(60);
  my_rank = c.rank();
  if (c.size() < 2) {
    std::fprintf(stderr, "run me with mpirun -np 3 (got %d rank)\n", c.size());
    return 2;
  }
  try {
    test_rank_order_sum(c);
    test_many_in_flight(c);
    test_host_collectives(c);
    test_data_parallel(c);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", c.rank(), e.what());
    c.abort(3);
  }
  std::vector<double> f{double(failures)};
  c.all_reduce(f.data(), 1);
  if (c.rank() == 0) std::printf("%s: %d ranks, %g failed checks (%s)\n", f[0] == 0 ? "passed" : "FAILED", c.size(), f[0], c.name().c_str());
  return f[0] == 0 ? 0 : 1;
}
