// seemore-bench-cuda: seemore_bench.cpp compiled by nvcc, for --device cuda
// (seemore-bench hands over to this binary for it).
#include "seemore_bench.cpp"
