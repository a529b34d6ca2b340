// seemore/backend/cpu/elementwise.hpp — maps, broadcasting binary ops, reductions.
//
// Broadcasting follows NumPy: shapes are aligned at the right, a dimension of
// size 1 stretches. A broadcast is described by the output shape and, for each
// operand, its element strides with 0 on stretched dimensions.
#pragma once

#include <seemore/backend/cpu/dropout.hpp>
#include <seemore/backend/cpu/isa.hpp>
#include <seemore/backend/cpu/parallel.hpp>
#include <seemore/backend/cpu/vmath.hpp>
#include <seemore/config.hpp>

SEEMORE_AVX512_WARNINGS_OFF  // Eigen's AVX-512 code trips g++ 12's bug 105593 (isa.hpp)
#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>
SEEMORE_AVX512_WARNINGS_ON

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace seemore::backend {
// The pointwise functions every backend implements under one name (unary_map).
enum class Unary { Exp, Log, Sqrt, ScaleShift };
}  // namespace seemore::backend

namespace seemore::backend::cpu {

struct Broadcast {
  std::vector<int64_t> shape;       // output
  std::vector<int64_t> sa, sb;      // operand strides, 0 where stretched
};

inline std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

// Strides of `in` read as a tensor of shape `out` (in broadcastable to out).
inline std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& in, const std::vector<int64_t>& out) {
  std::vector<int64_t> st(out.size(), 0);
  auto cs = contiguous_strides(in);
  const size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) st[off + i] = in[i] == 1 ? 0 : cs[i];
  return st;
}

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? "," : "") + std::to_string(s[i]);
  return o + "]";
}

inline Broadcast broadcast(const std::vector<int64_t>& a, const std::vector<int64_t>& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Broadcast r;
  r.shape.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    SEEMORE_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                  " cannot be broadcast together");
    r.shape[i] = da == 1 ? db : da;
  }
  r.sa = broadcast_strides(a, r.shape);
  r.sb = broadcast_strides(b, r.shape);
  return r;
}

// out[i] = f(a[ia], b[ib]) over the broadcast; the innermost dimension is a tight loop.
template <class T, class F>
void binary_broadcast(const Broadcast& bc, const T* a, const T* b, T* out, F f) {
  const auto& s = bc.shape;
  int64_t n = 1;
  for (auto d : s) n *= d;
  if (n == 0) return;
  if (s.empty()) {
    out[0] = f(a[0], b[0]);
    return;
  }
  const size_t nd = s.size();
  const int64_t inner = s[nd - 1], ia = bc.sa[nd - 1], ib = bc.sb[nd - 1];
  const int64_t rows = n / inner;
  SEEMORE_PARALLEL_FOR_IF(n >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t oa = 0, ob = 0, rem = r;
    for (size_t d = nd - 1; d-- > 0;) {
      const int64_t idx = rem % s[d];
      rem /= s[d];
      oa += idx * bc.sa[d];
      ob += idx * bc.sb[d];
    }
    T* o = out + r * inner;
    const T* pa = a + oa;
    const T* pb = b + ob;
    if (ia == 1 && ib == 1) {
      for (int64_t j = 0; j < inner; ++j) o[j] = f(pa[j], pb[j]);
    } else if (ia == 1 && ib == 0) {
      const T vb = pb[0];
      for (int64_t j = 0; j < inner; ++j) o[j] = f(pa[j], vb);
    } else if (ia == 0 && ib == 1) {
      const T va = pa[0];
      for (int64_t j = 0; j < inner; ++j) o[j] = f(va, pb[j]);
    } else {
      for (int64_t j = 0; j < inner; ++j) o[j] = f(pa[j * ia], pb[j * ib]);
    }
  }
}

template <class T>
void add(const Broadcast& bc, const T* a, const T* b, T* out) { binary_broadcast(bc, a, b, out, [](T x, T y) { return x + y; }); }
template <class T>
void sub(const Broadcast& bc, const T* a, const T* b, T* out) { binary_broadcast(bc, a, b, out, [](T x, T y) { return x - y; }); }
template <class T>
void mul(const Broadcast& bc, const T* a, const T* b, T* out) { binary_broadcast(bc, a, b, out, [](T x, T y) { return x * y; }); }
template <class T>
void div(const Broadcast& bc, const T* a, const T* b, T* out) { binary_broadcast(bc, a, b, out, [](T x, T y) { return x / y; }); }

// out = in reduced (summed) to `to`, a shape that broadcasts to `from`. out is overwritten.
template <class T>
void sum_to(const std::vector<int64_t>& from, const T* in, const std::vector<int64_t>& to, T* out) {
  int64_t n = 1, m = 1;
  for (auto d : from) n *= d;
  for (auto d : to) m *= d;
  std::fill(out, out + m, T(0));
  if (n == 0) return;
  const auto st = broadcast_strides(to, from);
  const size_t nd = from.size();
  if (nd == 0) {
    out[0] = in[0];
    return;
  }
  const int64_t inner = from[nd - 1], io = st[nd - 1];
  for (int64_t r = 0; r < n / inner; ++r) {
    int64_t oo = 0, rem = r;
    for (size_t d = nd - 1; d-- > 0;) {
      oo += (rem % from[d]) * st[d];
      rem /= from[d];
    }
    const T* p = in + r * inner;
    T* o = out + oo;
    if (io == 1) {
      for (int64_t j = 0; j < inner; ++j) o[j] += p[j];
    } else {
      T acc = 0;
      for (int64_t j = 0; j < inner; ++j) acc += p[j];
      o[0] += acc;
    }
  }
}

// out = in broadcast to `to` (the forward of broadcast_to; sum_to is its backward).
template <class T>
void broadcast_to(const std::vector<int64_t>& from, const T* in, const std::vector<int64_t>& to, T* out) {
  static const T zero = 0;
  Broadcast bc;
  bc.shape = to;
  bc.sa = broadcast_strides(from, to);
  bc.sb.assign(to.size(), 0);
  binary_broadcast(bc, in, &zero, out, [](T x, T) { return x; });
}

// y[i] = f(x[i])
template <class T, class F>
void map(int64_t n, const T* x, T* y, F f) {
  SEEMORE_PARALLEL_FOR_IF(n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}
// y[i] = f(a[i], b[i])
template <class T, class F>
void map2(int64_t n, const T* a, const T* b, T* y, F f) {
  SEEMORE_PARALLEL_FOR_IF(n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
}

template <class T>
void scale_shift(int64_t n, const T* x, T scale, T shift, T* y) { map(n, x, y, [=](T v) { return v * scale + shift; }); }
template <class T>
void unary_map(int64_t n, const T* x, T* y, Unary op) {
  switch (op) {
    case Unary::Exp: return map(n, x, y, [](T v) { return std::exp(v); });
    case Unary::Log: return map(n, x, y, [](T v) { return std::log(v); });
    case Unary::Sqrt: return map(n, x, y, [](T v) { return std::sqrt(v); });
    case Unary::ScaleShift: return map(n, x, y, [](T v) { return v; });
  }
}

// ---- activations. GELU: exact 0.5·x·(1 + erf(x/√2)), or the tanh approximation.
// The erf form of floats runs on vmath.hpp's erf and exp in the processor's
// form (|erf error| ≤ 4e-7), or on a processor without AVX2 on Eigen's
// vectorised erf/exp (a rational approximation within a few ulp, what
// vectorised PyTorch uses too); doubles on the scalar libm functions. In
// chunks spread over the threads.
namespace detail_act {
constexpr int64_t kChunk = 4096;
template <class T, class F>
void chunked(int64_t n, F f) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  SEEMORE_PARALLEL_FOR_IF(n >= kParallelGrain)
  for (int64_t c = 0; c < chunks; ++c) f(c * kChunk, std::min(n, (c + 1) * kChunk) - c * kChunk);
}
template <class T>
using ArrMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using CArrMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
}  // namespace detail_act

template <class T>
void gelu_forward(int64_t n, const T* x, T* y, bool tanh_approx) {
  using namespace detail_act;
  if (tanh_approx) {
    const T k = T(0.7978845608028654), c = T(0.044715);
    chunked<T>(n, [&](int64_t o, int64_t m) {
      CArrMap<T> v(x + o, m);
      ArrMap<T>(y + o, m) = T(0.5) * v * (T(1) + (k * (v + c * v * v * v)).tanh());
    });
  } else {
    const Isa isa = std::is_same_v<T, float> ? active_isa() : Isa::scalar;
    chunked<T>(n, [&](int64_t o, int64_t m) {
      if constexpr (std::is_same_v<T, float>)
        if (vmath::gelu_forward(isa, m, x + o, y + o)) return;
      CArrMap<T> v(x + o, m);
      ArrMap<T>(y + o, m) = T(0.5) * v * (T(1) + (v * T(0.7071067811865476)).erf());
    });
  }
}
template <class T>
void gelu_backward(int64_t n, const T* x, const T* dy, T* dx, bool tanh_approx) {
  using namespace detail_act;
  if (tanh_approx) {
    const T k = T(0.7978845608028654), c = T(0.044715);
    chunked<T>(n, [&](int64_t o, int64_t m) {
      CArrMap<T> v(x + o, m), g(dy + o, m);
      const auto t = (k * (v + c * v * v * v)).tanh().eval();
      ArrMap<T>(dx + o, m) = g * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * k * (T(1) + T(3) * c * v * v));
    });
  } else {
    const Isa isa = std::is_same_v<T, float> ? active_isa() : Isa::scalar;
    chunked<T>(n, [&](int64_t o, int64_t m) {
      if constexpr (std::is_same_v<T, float>)
        if (vmath::gelu_backward(isa, m, x + o, dy + o, dx + o)) return;
      CArrMap<T> v(x + o, m), g(dy + o, m);
      ArrMap<T>(dx + o, m) = g * (T(0.5) * (T(1) + (v * T(0.7071067811865476)).erf()) +
                                  v * (T(-0.5) * v * v).exp() * T(0.3989422804014327));
    });
  }
}
// The erf form's forward for a backward that follows: y = GELU(x) and d =
// GELU'(x), from one erf, so that the backward is dx = dy·d
// (gelu_backward_saved), the same bits as gelu_backward(x, dy) in every form.
template <class T>
void gelu_forward_grad(int64_t n, const T* x, T* y, T* d) {
  using namespace detail_act;
  const Isa isa = std::is_same_v<T, float> ? active_isa() : Isa::scalar;
  chunked<T>(n, [&](int64_t o, int64_t m) {
    if constexpr (std::is_same_v<T, float>)
      if (vmath::gelu_forward_grad(isa, m, x + o, y + o, d + o)) return;
    CArrMap<T> v(x + o, m);
    const auto e = (v * T(0.7071067811865476)).erf().eval();
    ArrMap<T>(y + o, m) = T(0.5) * v * (T(1) + e);
    ArrMap<T>(d + o, m) = T(0.5) * (T(1) + e) + v * (T(-0.5) * v * v).exp() * T(0.3989422804014327);
  });
}
template <class T>
void gelu_backward_saved(int64_t n, const T* d, const T* dy, T* dx) {
  using namespace detail_act;
  chunked<T>(n, [&](int64_t o, int64_t m) { ArrMap<T>(dx + o, m) = CArrMap<T>(dy + o, m) * CArrMap<T>(d + o, m); });
}
template <class T>
void relu_forward(int64_t n, const T* x, T* y) { map(n, x, y, [](T v) { return v > T(0) ? v : T(0); }); }
template <class T>
void relu_backward(int64_t n, const T* x, const T* dy, T* dx) {
  map2(n, x, dy, dx, [](T v, T g) { return v > T(0) ? g : T(0); });
}

// ---- bias: y[N, C] += b[C]; db[C] = Σ_rows dy (overwritten; rows summed in order).
template <class T>
void add_bias(int64_t N, int64_t C, T* y, const T* b) {
  SEEMORE_PARALLEL_FOR_IF(N * C >= kParallelGrain)
  for (int64_t r = 0; r < N; ++r)
    for (int64_t c = 0; c < C; ++c) y[r * C + c] += b[c];
}
template <class T>
void bias_grad(int64_t N, int64_t C, const T* dy, T* db) {
  for_column_blocks(N, C, [&](int64_t c0, int64_t c1) {
    std::fill(db + c0, db + c1, T(0));
    add_rows(N, C, dy, c0, c1, db);
  });
}

// ---- reductions over one dimension of a tensor viewed as [outer, n, inner].
template <class T>
void sum_dim(int64_t outer, int64_t n, int64_t inner, const T* x, T* y) {
  SEEMORE_PARALLEL_FOR_IF(outer * n * inner >= kParallelGrain && outer > 1)
  for (int64_t o = 0; o < outer; ++o) {
    T* yo = y + o * inner;
    std::fill(yo, yo + inner, T(0));
    for (int64_t k = 0; k < n; ++k) {
      const T* xo = x + (o * n + k) * inner;
      for (int64_t i = 0; i < inner; ++i) yo[i] += xo[i];
    }
  }
}
// Sum of all elements, in double for float inputs (losses and norms).
template <class T>
double sum_all(int64_t n, const T* x) {
  double acc = 0;
  for (int64_t i = 0; i < n; ++i) acc += double(x[i]);
  return acc;
}

}  // namespace seemore::backend::cpu
