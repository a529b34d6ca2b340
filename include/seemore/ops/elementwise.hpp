// seemore/ops/elementwise.hpp — differentiable elementwise arithmetic with
// NumPy broadcasting, scalar arithmetic, exp/log/sqrt, broadcast_to and sum_to.
#pragma once

#include <seemore/backend/cpu/elementwise.hpp>
#include <seemore/ops/common.hpp>

namespace seemore {

template <class T>
Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape);

// x stretched to `shape` (NumPy rules). Its gradient sums back with sum_to.
template <class T>
Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape) {
  auto bc = backend::cpu::broadcast(x.shape(), shape, "broadcast_to");
  SEEMORE_CHECK(bc.shape == shape, "broadcast_to: shape ", to_string(x.shape()), " cannot be stretched to ",
                to_string(shape));
  if (x.shape() == shape) return x;
  auto out = Tensor<T>::empty(shape, x.device());
  SEEMORE_DISPATCH(x.device(), broadcast_to, x.shape(), x.data(), shape, out.data());
  Shape xs = x.shape();
  autograd::record(out, "broadcast_to", {x}, [xs](const Tensor<T>& g) { return std::vector<Tensor<T>>{sum_to(g, xs)}; });
  return out;
}

// x summed down to `shape`, a shape that broadcasts to x's. Gradient: broadcast_to.
template <class T>
Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape) {
  auto bc = backend::cpu::broadcast(shape, x.shape(), "sum_to");
  SEEMORE_CHECK(bc.shape == x.shape(), "sum_to: shape ", to_string(x.shape()), " cannot be reduced to ",
                to_string(shape));
  if (x.shape() == shape) return x;
  auto out = Tensor<T>::empty(shape, x.device());
  SEEMORE_DISPATCH(x.device(), sum_to, x.shape(), x.data(), shape, out.data());
  Shape xs = x.shape();
  autograd::record(out, "sum_to", {x}, [xs](const Tensor<T>& g) { return std::vector<Tensor<T>>{broadcast_to(g, xs)}; });
  return out;
}

namespace detail {
enum class Arith { Add, Sub, Mul, Div };

template <class T>
Tensor<T> arith(const Tensor<T>& a, const Tensor<T>& b, Arith op);
}  // namespace detail

template <class T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) { return detail::arith(a, b, detail::Arith::Add); }
template <class T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) { return detail::arith(a, b, detail::Arith::Sub); }
template <class T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) { return detail::arith(a, b, detail::Arith::Mul); }
template <class T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) { return detail::arith(a, b, detail::Arith::Div); }

// y = x·scale + shift (the scalar ops: x + s, x − s, x·s, x/s, −x).
template <class T>
Tensor<T> affine(const Tensor<T>& x, double scale, double shift) {
  auto out = Tensor<T>::empty(x.shape(), x.device());
  SEEMORE_DISPATCH(x.device(), scale_shift, x.numel(), x.data(), T(scale), T(shift), out.data());
  autograd::record(out, "affine", {x}, [scale](const Tensor<T>& g) {
    return std::vector<Tensor<T>>{scale == 1.0 ? g : affine(g, scale, 0.0)};
  });
  return out;
}

namespace detail {
template <class T>
Tensor<T> arith(const Tensor<T>& a, const Tensor<T>& b, Arith op) {
  static const char* names[] = {"add", "sub", "mul", "div"};
  const char* name = names[int(op)];
  check_same_device(name, a, b);
  auto bc = backend::cpu::broadcast(a.shape(), b.shape(), name);
  auto out = Tensor<T>::empty(bc.shape, a.device());
  switch (op) {
    case Arith::Add: SEEMORE_DISPATCH(a.device(), add, bc, a.data(), b.data(), out.data()); break;
    case Arith::Sub: SEEMORE_DISPATCH(a.device(), sub, bc, a.data(), b.data(), out.data()); break;
    case Arith::Mul: SEEMORE_DISPATCH(a.device(), mul, bc, a.data(), b.data(), out.data()); break;
    case Arith::Div: SEEMORE_DISPATCH(a.device(), div, bc, a.data(), b.data(), out.data()); break;
  }
  const bool na = a.requires_grad(), nb = b.requires_grad();
  // Save only what the backward reads.
  Tensor<T> sa = (op == Arith::Mul || op == Arith::Div) && nb ? a.detach() : Tensor<T>();
  Tensor<T> sb = (op == Arith::Mul || op == Arith::Div) ? b.detach() : Tensor<T>();
  Shape as = a.shape(), bs = b.shape();
  autograd::record(out, name, {a, b}, [=](const Tensor<T>& g) {
    Tensor<T> ga, gb;
    switch (op) {
      case Arith::Add:
        if (na) ga = sum_to(g, as);
        if (nb) gb = sum_to(g, bs);
        break;
      case Arith::Sub:
        if (na) ga = sum_to(g, as);
        if (nb) gb = sum_to(affine(g, -1.0, 0.0), bs);
        break;
      case Arith::Mul:
        if (na) ga = sum_to(mul(g, sb), as);
        if (nb) gb = sum_to(mul(g, sa), bs);
        break;
      case Arith::Div:  // d(a/b)/db = −a/b²
        if (na) ga = sum_to(div(g, sb), as);
        if (nb) gb = sum_to(affine(div(mul(g, sa), mul(sb, sb)), -1.0, 0.0), bs);
        break;
    }
    return std::vector<Tensor<T>>{ga, gb};
  });
  return out;
}

// exp / log / sqrt share one shape: y = f(x), dx = dy · f'(x) written with y or x.
template <class T>
Tensor<T> unary(const Tensor<T>& x, backend::Unary op) {
  auto out = Tensor<T>::empty(x.shape(), x.device());
  SEEMORE_DISPATCH(x.device(), unary_map, x.numel(), x.data(), out.data(), op);
  return out;
}
}  // namespace detail

template <class T>
Tensor<T> exp(const Tensor<T>& x) {
  auto out = detail::unary(x, backend::Unary::Exp);
  auto y = out.detach();
  autograd::record(out, "exp", {x}, [y](const Tensor<T>& g) { return std::vector<Tensor<T>>{mul(g, y)}; });
  return out;
}
template <class T>
Tensor<T> log(const Tensor<T>& x) {
  auto out = detail::unary(x, backend::Unary::Log);
  auto xs = x.detach();
  autograd::record(out, "log", {x}, [xs](const Tensor<T>& g) { return std::vector<Tensor<T>>{div(g, xs)}; });
  return out;
}
template <class T>
Tensor<T> sqrt(const Tensor<T>& x) {
  auto out = detail::unary(x, backend::Unary::Sqrt);
  auto y = out.detach();
  autograd::record(out, "sqrt", {x}, [y](const Tensor<T>& g) { return std::vector<Tensor<T>>{div(g, affine(y, 2.0, 0.0))}; });
  return out;
}

// ---- operators
template <class T> Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) { return add(a, b); }
template <class T> Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) { return sub(a, b); }
template <class T> Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) { return mul(a, b); }
template <class T> Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) { return div(a, b); }
template <class T> Tensor<T> operator-(const Tensor<T>& a) { return affine(a, -1.0, 0.0); }
template <class T> Tensor<T> operator+(const Tensor<T>& a, double s) { return affine(a, 1.0, s); }
template <class T> Tensor<T> operator+(double s, const Tensor<T>& a) { return affine(a, 1.0, s); }
template <class T> Tensor<T> operator-(const Tensor<T>& a, double s) { return affine(a, 1.0, -s); }
template <class T> Tensor<T> operator-(double s, const Tensor<T>& a) { return affine(a, -1.0, s); }
template <class T> Tensor<T> operator*(const Tensor<T>& a, double s) { return affine(a, s, 0.0); }
template <class T> Tensor<T> operator*(double s, const Tensor<T>& a) { return affine(a, s, 0.0); }
template <class T> Tensor<T> operator/(const Tensor<T>& a, double s) { return affine(a, 1.0 / s, 0.0); }

}  // namespace seemore
