// seemore/tensor.hpp — Tensor<T>: a shaped, contiguous, row-major view of
// device memory, with the autograd bookkeeping that ops fill in.
//
// Shape letters used across the library: B batch, T time (text positions),
// C channels (width), H heads, D head size, V vocabulary, N rows.
//
// A Tensor is a handle: copies share the same data and the same graph node, as
// in PyTorch. Views (reshape, the first-dimension slice `rows`) share storage.
// Element types: float and double carry gradients; int32_t holds token ids.
#pragma once

#include <seemore/config.hpp>
#include <seemore/device.hpp>
#include <seemore/random.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iomanip>
#include <memory>
#include <new>
#include <numeric>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#if SEEMORE_HAS_CUDA
#include <seemore/backend/cuda/memory.hpp>
#include <seemore/backend/cuda/ops.hpp>
#endif

namespace seemore {

using Shape = std::vector<int64_t>;

inline std::string to_string(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}
inline int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

// ------------------------------------------------------------------ storage
template <class T>
class Storage {
 public:
  Storage(size_t n, Device dev) : n_(n), dev_(dev) {
    if (dev.is_cpu()) {
      // 64-byte alignment: full AVX-512 lines for Eigen and the row kernels.
      ptr_ = n ? static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))) : nullptr;
    } else {
#if SEEMORE_HAS_CUDA
      ptr_ = static_cast<T*>(backend::cuda::device_alloc(n * sizeof(T), dev.index()));
#else
      detail::fail("built without CUDA");
#endif
    }
  }
  ~Storage() {
    if (!ptr_) return;
    if (dev_.is_cpu()) {
      ::operator delete(ptr_, std::align_val_t(64));
    } else {
#if SEEMORE_HAS_CUDA
      backend::cuda::device_free(ptr_, n_ * sizeof(T), dev_.index());
#endif
    }
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  T* data() { return ptr_; }
  size_t size() const { return n_; }
  Device device() const { return dev_; }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
  Device dev_;
};

template <class T>
struct Node;  // autograd.hpp

template <class T>
struct TensorImpl {
  std::shared_ptr<Storage<T>> storage;
  size_t offset = 0;
  Shape shape;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl<T>> grad;
  std::shared_ptr<Node<T>> grad_fn;  // set on op outputs while the graph is alive
  // Leaves only: runs once per backward(), when `grad` holds every
  // contribution of that pass (autograd.hpp). Data parallelism hangs the
  // start of a bucket's all-reduce on it.
  std::function<void()> grad_ready_hook;
};

// Grad mode is per thread, like PyTorch's.
inline bool& grad_mode_flag() {
  thread_local bool enabled = true;
  return enabled;
}
inline bool grad_enabled() { return grad_mode_flag(); }

// Within its scope ops record no graph.
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_mode_flag()) { grad_mode_flag() = false; }
  ~NoGradGuard() { grad_mode_flag() = prev_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// ------------------------------------------------------------------ Tensor
template <class T>
class Tensor {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, int32_t>,
                "Tensor<T>: T must be float, double or int32_t");

 public:
  using value_type = T;
  static constexpr bool differentiable = std::is_floating_point_v<T>;

  Tensor() = default;  // undefined: no storage
  explicit Tensor(std::shared_ptr<TensorImpl<T>> impl) : impl_(std::move(impl)) {}

  // ---- creation
  static Tensor empty(const Shape& shape, Device dev = Device::cpu()) {
    for (auto d : shape) SEEMORE_CHECK(d >= 0, "Tensor: negative dimension in shape ", to_string(shape));
    auto impl = std::make_shared<TensorImpl<T>>();
    impl->storage = std::make_shared<Storage<T>>(size_t(numel_of(shape)), dev);
    impl->shape = shape;
    return Tensor(std::move(impl));
  }
  static Tensor full(const Shape& shape, T value, Device dev = Device::cpu()) {
#if SEEMORE_HAS_CUDA
    if (dev.is_cuda()) {  // made on the device: no host buffer, no copy (and capturable in a graph)
      Tensor z = empty(shape, dev);
      if (value == T(0)) {
        backend::cuda::zero_bytes(z.data(), size_t(z.numel()) * sizeof(T), dev.index());
      } else {
        backend::cuda::set_device(dev.index());
        backend::cuda::fill(z.numel(), z.data(), value);
      }
      return z;
    }
#endif
    Tensor t = empty(shape, Device::cpu());
    std::fill(t.data(), t.data() + t.numel(), value);
    return t.to(dev);
  }
  static Tensor zeros(const Shape& shape, Device dev = Device::cpu()) { return full(shape, T(0), dev); }
  static Tensor ones(const Shape& shape, Device dev = Device::cpu()) { return full(shape, T(1), dev); }
  // 0, 1, ..., n-1 (as in torch.arange(n)).
  static Tensor arange(int64_t n, Device dev = Device::cpu()) {
#if SEEMORE_HAS_CUDA
    if (dev.is_cuda()) {
      Tensor t = empty({n}, dev);
      backend::cuda::set_device(dev.index());
      backend::cuda::iota(n, t.data());
      return t;
    }
#endif
    Tensor t = empty({n}, Device::cpu());
    for (int64_t i = 0; i < n; ++i) t.data()[i] = T(i);
    return t.to(dev);
  }
  static Tensor from_vector(const Shape& shape, const std::vector<T>& v, Device dev = Device::cpu()) {
    SEEMORE_CHECK(int64_t(v.size()) == numel_of(shape), "Tensor::from_vector: ", v.size(),
                  " values for shape ", to_string(shape));
    Tensor t = empty(shape, Device::cpu());
    std::copy(v.begin(), v.end(), t.data());
    return t.to(dev);
  }
  static Tensor scalar(T v, Device dev = Device::cpu()) { return full({}, v, dev); }
  // Standard normal * stddev + mean, element i a function of (seed, counter + i) only.
  static Tensor randn(const Shape& shape, Generator& gen, double mean = 0, double stddev = 1,
                      Device dev = Device::cpu()) {
    Tensor t = empty(shape, Device::cpu());
    const int64_t n = t.numel();
    const uint64_t base = gen.reserve(uint64_t(n + 1) / 2);
    for (int64_t i = 0; i < n; ++i) t.data()[i] = T(mean + stddev * Philox::normal(gen.seed(), base, uint64_t(i)));
    return t.to(dev);
  }
  // Uniform on [lo, hi).
  static Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, Device dev = Device::cpu()) {
    Tensor t = empty(shape, Device::cpu());
    const int64_t n = t.numel();
    const uint64_t base = gen.reserve(uint64_t(n + 3) / 4);
    for (int64_t i = 0; i < n; ++i) t.data()[i] = T(lo + (hi - lo) * Philox::uniform(gen.seed(), base, uint64_t(i)));
    return t.to(dev);
  }

  // ---- inspection
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int ndim() const { return int(impl().shape.size()); }
  // Size of dimension i; negative i counts from the end.
  int64_t size(int i) const {
    const int n = ndim();
    SEEMORE_CHECK(i >= -n && i < n, "Tensor::size: dimension ", i, " out of range for shape ", to_string(shape()));
    return impl().shape[size_t(i < 0 ? i + n : i)];
  }
  int64_t numel() const { return numel_of(impl().shape); }
  Device device() const { return impl().storage->device(); }
  T* data() const { return impl().storage->data() + impl().offset; }
  TensorImpl<T>* impl_ptr() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl<T>>& impl_shared() const { return impl_; }
  bool shares_storage_with(const Tensor& o) const { return impl().storage == o.impl().storage; }

  // ---- autograd state (the graph itself is built by the ops)
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& requires_grad_(bool on = true) {
    static_assert(differentiable, "requires_grad_: only float and double tensors carry gradients");
    SEEMORE_CHECK(!on || !impl().grad_fn, "requires_grad_: only leaf tensors can be marked; this one is an op result");
    impl().requires_grad = on;
    return *this;
  }
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node<T>>& grad_fn() const { return impl().grad_fn; }
  // The accumulated gradient (undefined until a backward pass reaches this tensor).
  Tensor grad() const { return Tensor(impl().grad); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  // Drops the gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad() { impl().grad.reset(); }
  // A leaf's hook, run by each backward() once this tensor's gradient is
  // complete for that pass (PyTorch's register_post_accumulate_grad_hook);
  // an empty function removes it.
  void set_grad_ready_hook(std::function<void()> hook) {
    SEEMORE_CHECK(!hook || (impl().requires_grad && !impl().grad_fn),
                  "set_grad_ready_hook: only a leaf that requires grad has one");
    impl().grad_ready_hook = std::move(hook);
  }
  // Same data, no history, no gradient.
  Tensor detach() const {
    auto impl = std::make_shared<TensorImpl<T>>();
    impl->storage = this->impl().storage;
    impl->offset = this->impl().offset;
    impl->shape = this->impl().shape;
    return Tensor(std::move(impl));
  }
  // Runs reverse-mode autodiff from this scalar (defined in autograd.hpp).
  void backward() const;

  // ---- copies and views without gradient tracking
  Tensor clone() const {
    Tensor t = empty(shape(), device());
    copy_(t, *this);
    return t;
  }
  Tensor to(Device dev) const {
    if (dev == device()) return *this;
    Tensor t = empty(shape(), dev);
    copy_(t, *this);
    return t;
  }
  // Moves the data to `dev` in place: every handle to this tensor sees the new
  // storage (how a module moves its parameters). Views of the old storage do not follow.
  void move_to_(Device dev) {
    if (dev == device()) return;
    Tensor moved = to(dev);
    impl().storage = moved.impl().storage;
    impl().offset = 0;
    if (impl().grad) Tensor(impl().grad).move_to_(dev);
  }
  // A view that shares storage (no autograd; ops::reshape records the graph).
  Tensor view(const Shape& new_shape) const {
    Shape s = infer_shape(new_shape, numel(), "view");
    auto impl = std::make_shared<TensorImpl<T>>();
    impl->storage = this->impl().storage;
    impl->offset = this->impl().offset;
    impl->shape = s;
    return Tensor(std::move(impl));
  }
  // Rows [begin, end) along the first dimension, sharing storage (no autograd).
  Tensor rows(int64_t begin, int64_t end) const {
    SEEMORE_CHECK(ndim() >= 1 && begin >= 0 && begin <= end && end <= size(0), "Tensor::rows: range [", begin, ",",
                  end, ") out of bounds for shape ", to_string(shape()));
    auto impl = std::make_shared<TensorImpl<T>>();
    impl->storage = this->impl().storage;
    impl->shape = shape();
    const int64_t row = size(0) ? numel() / size(0) : 0;
    impl->offset = this->impl().offset + size_t(begin * row);
    impl->shape[0] = end - begin;
    return Tensor(std::move(impl));
  }
  void fill_(T v) {
    if (device().is_cpu()) std::fill(data(), data() + numel(), v);
    else copy_from(full(shape(), v, device()));
  }
  // Copies src's values into this tensor's memory (any devices; same element count).
  void copy_from(const Tensor& src) {
    SEEMORE_CHECK(src.numel() == numel(), "copy_from: ", src.numel(), " values into a tensor of shape ",
                  to_string(shape()));
    copy_(*this, src);
  }

  // ---- host access
  std::vector<T> to_vector() const {
    Tensor c = to(Device::cpu());
    return std::vector<T>(c.data(), c.data() + c.numel());
  }
  T item() const {
    SEEMORE_CHECK(numel() == 1, "item: tensor of shape ", to_string(shape()), " is not a single value");
    return to_vector()[0];
  }
  // Element at a multi-index (tests and debugging; not fast).
  T at(std::initializer_list<int64_t> idx) const {
    SEEMORE_CHECK(int(idx.size()) == ndim(), "at: ", idx.size(), " indices for shape ", to_string(shape()));
    SEEMORE_CHECK(device().is_cpu(), "at: tensor is on ", device().str());
    int64_t off = 0, k = 0;
    for (auto i : idx) {
      SEEMORE_CHECK(i >= 0 && i < shape()[size_t(k)], "at: index ", i, " out of range in dim ", k);
      off = off * shape()[size_t(k++)] + i;
    }
    return data()[off];
  }

  // Resolves one -1 in a requested shape.
  static Shape infer_shape(Shape s, int64_t n, const char* op) {
    int64_t known = 1, neg = -1;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == -1) {
        SEEMORE_CHECK(neg < 0, op, ": more than one -1 in shape ", to_string(s));
        neg = int64_t(i);
      } else {
        SEEMORE_CHECK(s[i] >= 0, op, ": invalid dimension in shape ", to_string(s));
        known *= s[i];
      }
    }
    if (neg >= 0) {
      SEEMORE_CHECK(known > 0 && n % known == 0, op, ": cannot infer -1 in ", to_string(s), " for ", n, " elements");
      s[size_t(neg)] = n / known;
    }
    SEEMORE_CHECK(numel_of(s) == n, op, ": shape ", to_string(s), " does not hold ", n, " elements");
    return s;
  }

 private:
  TensorImpl<T>& impl() const {
    SEEMORE_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  static void copy_(Tensor& dst, const Tensor& src) {
    const size_t bytes = size_t(src.numel()) * sizeof(T);
    if (dst.device().is_cpu() && src.device().is_cpu()) {
      if (bytes) std::memcpy(dst.data(), src.data(), bytes);
      return;
    }
#if SEEMORE_HAS_CUDA
    const int gpu = dst.device().is_cuda() ? dst.device().index() : src.device().index();
    backend::cuda::copy_bytes(dst.data(), dst.device().is_cuda(), src.data(), src.device().is_cuda(), bytes, gpu);
#else
    detail::fail("built without CUDA");
#endif
  }

  std::shared_ptr<TensorImpl<T>> impl_;
};

// ------------------------------------------------------------------ printing
template <class T>
std::ostream& operator<<(std::ostream& os, const Tensor<T>& t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  os << "Tensor" << to_string(t.shape()) << " on " << t.device().str();
  if (t.requires_grad()) os << " requires_grad";
  if (t.grad_fn()) os << " grad_fn";
  auto v = t.to_vector();
  const int64_t last = t.ndim() ? t.size(-1) : 1;
  const size_t limit = 64;
  os << "\n";
  for (size_t i = 0; i < v.size() && i < limit; ++i) {
    os << std::setw(11) << std::setprecision(5) << v[i];
    if (last && (int64_t(i) + 1) % last == 0) os << "\n";
  }
  if (v.size() > limit) os << " ... (" << v.size() << " values)\n";
  return os;
}

// ------------------------------------------------------------------ comparison helpers
// Largest |a - b| over all elements (shapes must match).
template <class T>
double max_abs_diff(const Tensor<T>& a, const Tensor<T>& b) {
  SEEMORE_CHECK(a.shape() == b.shape(), "max_abs_diff: shapes ", to_string(a.shape()), " and ", to_string(b.shape()));
  auto va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(double(va[i]) - double(vb[i])));
  return m;
}
// True when |got - ref| <= atol + rtol*|ref| for every element (NaN never passes).
template <class T>
bool allclose(const Tensor<T>& got, const Tensor<T>& ref, double rtol = 1e-5, double atol = 1e-8) {
  if (got.shape() != ref.shape()) return false;
  auto g = got.to_vector(), r = ref.to_vector();
  for (size_t i = 0; i < g.size(); ++i) {
    const double d = std::abs(double(g[i]) - double(r[i]));
    if (!(d <= atol + rtol * std::abs(double(r[i])))) return false;
  }
  return true;
}

}  // namespace seemore

#include <seemore/autograd.hpp>
