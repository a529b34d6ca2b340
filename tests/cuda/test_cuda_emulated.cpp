// The GPU test suite (test_cuda.cu) run on the CPU: the whole CUDA backend —
// Device::cuda(), the caching allocator, streams, the cuBLAS calls, every op's
// CUDA branch, the optimizers, generation with the KV cache — built by g++
// against tests/cuda/emulation.hpp's CUDA runtime, cuBLAS and execution model,
// and compared with the CPU path. A program of its own: it is all one mode.
#define SEEMORE_CUDA_EMULATED_DEVICE 1
#include "emulation.hpp"

#include "test_cuda.cu"
