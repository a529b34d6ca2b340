// seemore/backend/cpu/conv.hpp — the patchify convolution (kernel = stride = k)
// as im2col + GEMM.
//
// x [B, Cin, H, W] -> patches [B·P, Cin·k·k], P = (H/k)·(W/k) in row-major patch
// order, each row laid out (c, i, j) like the weight [Cout, Cin, k, k]. Pixels
// past the last whole patch are ignored (floor, as Conv2d with stride k).
#pragma once

#include <cstdint>
#include <cstring>

namespace seemore::backend::cpu {

template <class T>
void im2col_patches(int64_t B, int64_t Cin, int64_t H, int64_t W, int64_t k, const T* x, T* cols) {
  const int64_t Ho = H / k, Wo = W / k, K = Cin * k * k;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t ph = 0; ph < Ho; ++ph)
      for (int64_t pw = 0; pw < Wo; ++pw) {
        T* row = cols + ((b * Ho + ph) * Wo + pw) * K;
        for (int64_t c = 0; c < Cin; ++c)
          for (int64_t i = 0; i < k; ++i)
            std::memcpy(row + (c * k + i) * k, x + ((b * Cin + c) * H + ph * k + i) * W + pw * k, size_t(k) * sizeof(T));
      }
}

// The adjoint of im2col_patches: dx is overwritten (zero where no patch reads).
template <class T>
void col2im_patches(int64_t B, int64_t Cin, int64_t H, int64_t W, int64_t k, const T* dcols, T* dx) {
  const int64_t Ho = H / k, Wo = W / k, K = Cin * k * k;
  if (Ho * k != H || Wo * k != W) std::memset(dx, 0, size_t(B * Cin * H * W) * sizeof(T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t ph = 0; ph < Ho; ++ph)
      for (int64_t pw = 0; pw < Wo; ++pw) {
        const T* row = dcols + ((b * Ho + ph) * Wo + pw) * K;
        for (int64_t c = 0; c < Cin; ++c)
          for (int64_t i = 0; i < k; ++i)
            std::memcpy(dx + ((b * Cin + c) * H + ph * k + i) * W + pw * k, row + (c * k + i) * k, size_t(k) * sizeof(T));
      }
}

}  // namespace seemore::backend::cpu
