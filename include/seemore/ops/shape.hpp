// seemore/ops/shape.hpp — differentiable reshaping and indexing: reshape,
// permute, transpose, concat, slice, index_select, gather, embedding.
//
// reshape is a view (no copy). permute/transpose, concat and slice copy into a
// fresh contiguous tensor: every tensor in seemore is contiguous row-major, so
// kernels never deal with strides.
#pragma once

#include <seemore/backend/cpu/layout.hpp>
#include <seemore/ops/common.hpp>

namespace seemore {

template <class T>
Tensor<T> reshape(const Tensor<T>& x, const Shape& shape) {
  Tensor<T> out = x.view(Tensor<T>::infer_shape(shape, x.numel(), "reshape"));
  Shape xs = x.shape();
  autograd::record(out, "reshape", {x}, [xs](const Tensor<T>& g) { return std::vector<Tensor<T>>{reshape(g, xs)}; });
  return out;
}

template <class T>
Tensor<T> permute(const Tensor<T>& x, const std::vector<int>& perm) {
  const int nd = x.ndim();
  SEEMORE_CHECK(int(perm.size()) == nd, "permute: ", perm.size(), " axes for shape ", to_string(x.shape()));
  std::vector<int> p(perm.size()), inv(perm.size());
  std::vector<bool> used(perm.size(), false);
  Shape os(perm.size());
  for (int i = 0; i < nd; ++i) {
    p[size_t(i)] = detail::norm_dim(perm[size_t(i)], nd, "permute");
    SEEMORE_CHECK(!used[size_t(p[size_t(i)])], "permute: axis ", perm[size_t(i)], " repeated");
    used[size_t(p[size_t(i)])] = true;
    inv[size_t(p[size_t(i)])] = i;
    os[size_t(i)] = x.shape()[size_t(p[size_t(i)])];
  }
  auto out = Tensor<T>::empty(os, x.device());
  SEEMORE_DISPATCH(x.device(), permute, x.shape(), p, x.data(), out.data());
  autograd::record(out, "permute", {x}, [inv](const Tensor<T>& g) { return std::vector<Tensor<T>>{permute(g, inv)}; });
  return out;
}

template <class T>
Tensor<T> transpose(const Tensor<T>& x, int d0, int d1) {
  std::vector<int> p(size_t(x.ndim()));
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[size_t(detail::norm_dim(d0, x.ndim(), "transpose"))], p[size_t(detail::norm_dim(d1, x.ndim(), "transpose"))]);
  return permute(x, p);
}

// Elements [start, end) of dimension `dim`.
template <class T>
Tensor<T> slice(const Tensor<T>& x, int dim, int64_t start, int64_t end) {
  const int d = detail::norm_dim(dim, x.ndim(), "slice");
  const int64_t n = x.shape()[size_t(d)];
  SEEMORE_CHECK(0 <= start && start <= end && end <= n, "slice: range [", start, ", ", end, ") out of bounds for dim ",
                d, " of shape ", to_string(x.shape()));
  int64_t outer, nn, inner;
  detail::split_at(x.shape(), d, outer, nn, inner);
  Shape os = x.shape();
  os[size_t(d)] = end - start;
  auto out = Tensor<T>::empty(os, x.device());
  SEEMORE_DISPATCH(x.device(), slice_copy, outer, n, inner, start, end - start, x.data(), out.data());
  Shape xs = x.shape();
  autograd::record(out, "slice", {x}, [=](const Tensor<T>& g) {
    auto gx = Tensor<T>::empty(xs, g.device());
    SEEMORE_DISPATCH(g.device(), slice_scatter, outer, n, inner, start, end - start, g.data(), gx.data());
    return std::vector<Tensor<T>>{gx};
  });
  return out;
}

template <class T>
Tensor<T> concat(const std::vector<Tensor<T>>& xs, int dim) {
  SEEMORE_CHECK(!xs.empty(), "concat: no tensors");
  const int d = detail::norm_dim(dim, xs[0].ndim(), "concat");
  Shape os = xs[0].shape();
  os[size_t(d)] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    Shape s = xs[i].shape();
    SEEMORE_CHECK(s.size() == os.size(), "concat: tensor ", i, " has shape ", to_string(s), ", tensor 0 has ",
                  to_string(xs[0].shape()));
    s[size_t(d)] = 0;
    Shape ref = xs[0].shape();
    ref[size_t(d)] = 0;
    SEEMORE_CHECK(s == ref, "concat: tensor ", i, " has shape ", to_string(xs[i].shape()), ", tensor 0 has ",
                  to_string(xs[0].shape()), " (they may differ only in dim ", d, ")");
    detail::check_same_device("concat", xs[0], xs[i]);
    os[size_t(d)] += xs[i].shape()[size_t(d)];
  }
  int64_t outer, n, inner;
  detail::split_at(os, d, outer, n, inner);
  auto out = Tensor<T>::empty(os, xs[0].device());
  std::vector<int64_t> starts;
  int64_t at = 0;
  for (auto& x : xs) {
    const int64_t len = x.shape()[size_t(d)];
    SEEMORE_DISPATCH(x.device(), slice_place, outer, n, inner, at, len, x.data(), out.data());
    starts.push_back(at);
    at += len;
  }
  autograd::record(out, "concat", xs, [starts, d, n](const Tensor<T>& g) {
    std::vector<Tensor<T>> gs;
    for (size_t i = 0; i < starts.size(); ++i)
      gs.push_back(slice(g, d, starts[i], i + 1 < starts.size() ? starts[i + 1] : n));
    return gs;
  });
  return out;
}

namespace detail {
inline void check_indices(const Tensor<int32_t>& idx, int64_t n, const char* op) {
  if (!host_checks(idx.device())) return;
  auto v = idx.to_vector();
  for (size_t i = 0; i < v.size(); ++i)
    SEEMORE_CHECK(v[i] >= 0 && v[i] < n, op, ": index ", v[i], " at position ", i, " is outside [0, ", n, ")");
}
}  // namespace detail

// Entries idx[0..m) of dimension `dim`; idx is 1-d.
template <class T>
Tensor<T> index_select(const Tensor<T>& x, int dim, const Tensor<int32_t>& idx) {
  const int d = detail::norm_dim(dim, x.ndim(), "index_select");
  SEEMORE_CHECK(idx.ndim() == 1, "index_select: indices must be 1-d, got shape ", to_string(idx.shape()));
  detail::check_same_device("index_select", x, idx);
  int64_t outer, n, inner;
  detail::split_at(x.shape(), d, outer, n, inner);
  detail::check_indices(idx, n, "index_select");
  const int64_t m = idx.numel();
  Shape os = x.shape();
  os[size_t(d)] = m;
  auto out = Tensor<T>::empty(os, x.device());
  SEEMORE_DISPATCH(x.device(), index_select, outer, n, inner, x.data(), m, idx.data(), out.data());
  Shape xs = x.shape();
  autograd::record(out, "index_select", {x}, [=](const Tensor<T>& g) {
    auto gx = Tensor<T>::empty(xs, g.device());
    SEEMORE_DISPATCH(g.device(), index_add, outer, n, inner, g.data(), m, idx.data(), gx.data());
    return std::vector<Tensor<T>>{gx};
  });
  return out;
}

// torch.gather: out[..., j, ...] = x[..., idx[..., j, ...], ...] along `dim`;
// idx has x's shape except (any size) at dim.
template <class T>
Tensor<T> gather(const Tensor<T>& x, int dim, const Tensor<int32_t>& idx) {
  const int d = detail::norm_dim(dim, x.ndim(), "gather");
  detail::check_same_device("gather", x, idx);
  Shape a = x.shape(), b = idx.shape();
  SEEMORE_CHECK(a.size() == b.size(), "gather: index shape ", to_string(b), " vs input shape ", to_string(a));
  a[size_t(d)] = b[size_t(d)];
  SEEMORE_CHECK(a == b, "gather: index shape ", to_string(idx.shape()), " must equal input shape ",
                to_string(x.shape()), " except in dim ", d);
  int64_t outer, n, inner;
  detail::split_at(x.shape(), d, outer, n, inner);
  detail::check_indices(idx, n, "gather");
  const int64_t m = idx.shape()[size_t(d)];
  auto out = Tensor<T>::empty(idx.shape(), x.device());
  SEEMORE_DISPATCH(x.device(), gather, outer, n, inner, x.data(), m, idx.data(), out.data());
  Shape xs = x.shape();
  autograd::record(out, "gather", {x}, [=](const Tensor<T>& g) {
    auto gx = Tensor<T>::empty(xs, g.device());
    SEEMORE_DISPATCH(g.device(), scatter_add, outer, n, inner, g.data(), m, idx.data(), gx.data());
    return std::vector<Tensor<T>>{gx};
  });
  return out;
}

// Rows of table [V, C] picked by ids (any shape) -> ids.shape + [C].
template <class T>
Tensor<T> embedding(const Tensor<T>& table, const Tensor<int32_t>& ids) {
  SEEMORE_CHECK(table.ndim() == 2, "embedding: table must be [V, C], got ", to_string(table.shape()));
  detail::check_same_device("embedding", table, ids);
  const int64_t V = table.size(0), C = table.size(1), N = ids.numel();
  detail::check_indices(ids, V, "embedding");
  Shape os = ids.shape();
  os.push_back(C);
  auto out = Tensor<T>::empty(os, table.device());
  SEEMORE_DISPATCH(table.device(), embedding_forward, V, C, table.data(), N, ids.data(), out.data());
  autograd::record(out, "embedding", {table}, [=](const Tensor<T>& g) {
    auto gt = Tensor<T>::empty({V, C}, g.device());
    SEEMORE_DISPATCH(g.device(), embedding_backward, V, C, g.data(), N, ids.data(), gt.data());
    return std::vector<Tensor<T>>{gt};
  });
  return out;
}

}  // namespace seemore
