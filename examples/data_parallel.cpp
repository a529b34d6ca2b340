// Data-parallel training with seemore's public API: the spiral classifier of
// tiny_train.cpp, its batch of 300 points cut across the processes of an MPI
// run (and, within each, into --accum micro-batches). Every rank ends with
// the same weights, and the same as one process would compute:
//
//   ./data_parallel                  one process
//   ./data_parallel 3                one process, 3 micro-batches a step
//   mpirun -np 3 ./data_parallel     3 ranks (built against seemore::mpi)
#include <seemore/distributed.hpp>
#include <seemore/vlm.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>

using namespace seemore;
using Tf = Tensor<float>;

int main(int argc, char** argv) {
  auto comm = distributed::connect(&argc, &argv);  // MPI under mpirun, else a run of one
  const int64_t accum = argc > 1 ? std::atoll(argv[1]) : 1;
  Generator gen(0);
  const int64_t N = 300, classes = 3, hidden = 64;

  // Data: three noisy spirals, the same on every rank.
  auto x = Tf::empty({N, 2});
  std::vector<int32_t> labels(N);
  auto noise = Tf::randn({N, 2}, gen, 0.0, 0.1);
  for (int64_t i = 0; i < N; ++i) {
    const int64_t c = i / (N / classes);
    const double r = double(i % (N / classes)) / double(N / classes), t = 4.0 * c + 4.0 * r;
    x.data()[2 * i] = float(r * std::sin(t)) + noise.data()[2 * i];
    x.data()[2 * i + 1] = float(r * std::cos(t)) + noise.data()[2 * i + 1];
    labels[size_t(i)] = int32_t(c);
  }
  auto y = Tensor<int32_t>::from_vector({N}, labels);
  auto init = [&](Shape s, int64_t fan_in) {
    const double b = 1.0 / std::sqrt(double(fan_in));
    return Tf::uniform(s, -b, b, gen).requires_grad_();
  };
  Tf w1 = init({hidden, 2}, 2), b1 = init({hidden}, 2), w2 = init({classes, hidden}, hidden), b2 = init({classes}, hidden);

  // ---- the data-parallel part
  optim::Adam<float> opt({w1, b1, w2, b2}, {0.01});
  distributed::DataParallel<float> dp(opt, *comm);  // rank 0's weights on every rank
  double first = 0, loss = 0;
  for (int step = 0; step <= 300; ++step) {
    // Each micro-batch is a run of rows of the global batch; its loss is
    // divided by the global batch's size, so the runs add up to the batch mean.
    loss = dp.step(N, accum, [&](const distributed::MicroBatch& mb) {
      Tf xb = x.rows(mb.begin, mb.begin + mb.count);
      return cross_entropy(linear(gelu(linear(xb, w1, b1)), w2, b2), y.rows(mb.begin, mb.begin + mb.count), -100, N);
    });
    if (step == 0) first = loss;
    if (step % 50 == 0 && comm->rank() == 0) std::printf("step %3d  loss %.4f\n", step, loss);
  }
  dp.check_in_sync("at the end");  // every rank holds the same weights
  if (comm->rank() == 0)
    std::printf("%d rank%s x %lld micro-batch%s: final loss %.6f, weights %016llx\n", comm->size(),
                comm->size() > 1 ? "s" : "", static_cast<long long>(accum), accum > 1 ? "es" : "", loss,
                static_cast<unsigned long long>(dp.parameter_hash()));
  return loss < 0.5 * first ? 0 : 1;  // it must have learned something
}
