// seemore/io/torch_file.hpp — the tensors of a file written by torch.save
// (the ZIP format, PyTorch 1.6 and later), without Python and without running
// anything the file names.
//
// Layout: a ZIP archive (io/zip.hpp) with "<name>/data.pkl", a pickle
// (io/pickle.hpp) of the saved object, and "<name>/data/<key>", the raw bytes
// of each storage. A tensor in the pickle is a call to
// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...), the
// storage a persistent id ("storage", torch.FloatStorage, key, location,
// numel). We rebuild float32, float16, bfloat16 and float64 tensors (as
// float), any strides and offsets, after checking that every element they
// address lies inside the storage's bytes.
//
// The state dict is the saved object itself when it is a dict of tensors
// (torch.save(model.state_dict(), f)), or such a dict under "state_dict",
// "model_state_dict", "model" or "module" of a saved training checkpoint;
// whatever else the checkpoint holds (optimizer state, numbers, objects we do
// not know) is read as plain data and left alone.
#pragma once

#include <seemore/io/file.hpp>
#include <seemore/io/pickle.hpp>
#include <seemore/io/safetensors.hpp>
#include <seemore/io/zip.hpp>

#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace seemore::io {

inline bool is_zip(const std::string& b) { return b.size() >= 4 && b.compare(0, 4, "PK\x03\x04") == 0; }
// torch.save's format before PyTorch 1.6: a pickle that starts with its magic number 0x1950a86a20f9469cfc6c.
inline bool is_legacy_torch(const std::string& b) {
  static const char magic[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
  return b.size() >= sizeof magic - 1 && b.compare(0, sizeof magic - 1, magic, sizeof magic - 1) == 0;
}

namespace detail_torch {
struct Storage {
  std::string type;  // "torch.FloatStorage"...
  std::string key;
  std::optional<FloatType> element;  // none: not a float type we read
};
struct TensorRef {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;
  std::vector<int64_t> size, stride;
};
inline std::optional<FloatType> float_type(const std::string& type) {
  if (type == "torch.FloatStorage") return FloatType::F32;
  if (type == "torch.HalfStorage") return FloatType::F16;
  if (type == "torch.BFloat16Storage") return FloatType::BF16;
  if (type == "torch.DoubleStorage") return FloatType::F64;
  return std::nullopt;
}
inline const TensorRef* as_tensor(const PyValue* v) {
  return v && v->is(PyValue::Kind::Object) && v->text == "torch.Tensor" && v->native
             ? static_cast<const TensorRef*>(v->native.get())
             : nullptr;
}
inline bool is_tensor_dict(const PyValue* v) {
  if (!v || !v->is(PyValue::Kind::Dict) || v->items.empty()) return false;
  for (size_t i = 0; i < v->items.size(); i += 2)
    if (!v->items[i]->is(PyValue::Kind::Str) || !as_tensor(v->items[i + 1])) return false;
  return true;
}
}  // namespace detail_torch

// Parses torch.save bytes; `where` (the file name) starts every error message.
// The result has the state dict's tensors in file order and no metadata.
inline SafeTensors parse_torch_file(const std::string& bytes, const std::string& where) {
  using K = PyValue::Kind;
  using detail_torch::Storage;
  using detail_torch::TensorRef;
  SEEMORE_CHECK(!is_legacy_torch(bytes), where,
                ": a torch.save file in the format before PyTorch 1.6 (or saved with "
                "_use_new_zipfile_serialization=False): load it in PyTorch and save it again with torch.save");
  SEEMORE_CHECK(is_zip(bytes), where, ": not a torch.save ZIP archive");
  ZipReader zip(bytes, where);
  std::string prefix;
  bool found = false;
  for (auto& [name, e] : zip.entries()) {
    const size_t n = name.size();
    if (name == "data.pkl" || (n > 9 && name.compare(n - 9, 9, "/data.pkl") == 0 &&
                               name.find('/') == n - 9)) {
      prefix = name.substr(0, n - 8);
      found = true;
      break;
    }
  }
  if (!found) {
    for (auto& [name, e] : zip.entries())
      SEEMORE_CHECK(name.find("constants.pkl") == std::string::npos, where,
                    ": a TorchScript archive (torch.jit.save), not a torch.save file");
    detail::fail(where, ": ZIP archive without a data.pkl: not written by torch.save");
  }
  if (zip.contains(prefix + "byteorder")) {
    const auto order = zip.read(prefix + "byteorder");
    SEEMORE_CHECK(order == "little", where, ": tensors stored ", std::string(order), "-endian are not supported");
  }

  auto bad = [&](const char* fn, const char* what) { detail::fail(where, ": ", fn, ": ", what); };
  PickleHooks hooks;
  hooks.persistent_load = [&](Unpickled& u, const PyValue& pid) -> PyRef {
    if (!pid.is(K::Tuple) || pid.items.size() < 5 || !pid.items[0]->is(K::Str) || pid.items[0]->text != "storage" ||
        !pid.items[1]->is(K::Global) || !pid.items[2]->is(K::Str))
      bad("persistent id", "expected ('storage', type, key, location, size)");
    auto s = std::make_shared<Storage>();
    s->type = pid.items[1]->text;
    s->key = pid.items[2]->text;
    s->element = detail_torch::float_type(s->type);
    PyRef r = u.make(K::Object);
    r->text = "torch.Storage";
    r->native = s;
    return r;
  };
  std::function<PyRef(Unpickled&, const PyValue&, const PyValue&)> call;
  call = [&](Unpickled& u, const PyValue& fn, const PyValue& args) -> PyRef {
    const std::string& f = fn.text;
    if (f == "collections.OrderedDict") return u.make(K::Dict);
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
      const char* name = f.c_str();
      if (args.items.size() < 4) bad(name, "fewer than 4 arguments");
      const PyValue* st = args.items[0];
      if (!st->is(K::Object) || st->text != "torch.Storage" || !st->native) bad(name, "argument 1 is not a storage");
      auto t = std::make_shared<TensorRef>();
      t->storage = std::static_pointer_cast<Storage>(st->native);
      if (!args.items[1]->is(K::Int)) bad(name, "the storage offset is not an integer");
      t->offset = args.items[1]->integer;
      auto ints = [&](const PyValue* v, std::vector<int64_t>& out, const char* what) {
        if (!v->is_sequence()) bad(name, what);
        for (auto* x : v->items) {
          if (!x->is(K::Int)) bad(name, what);
          out.push_back(x->integer);
        }
      };
      ints(args.items[2], t->size, "the size is not a tuple of integers");
      ints(args.items[3], t->stride, "the stride is not a tuple of integers");
      if (t->size.size() != t->stride.size()) bad(name, "size and stride differ in length");
      PyRef r = u.make(K::Object);
      r->text = "torch.Tensor";
      r->native = t;
      return r;
    }
    // nn.Parameter(data, requires_grad, hooks): the data is the tensor.
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state")
      return !args.items.empty() && detail_torch::as_tensor(args.items[0]) ? args.items[0] : nullptr;
    // A tensor subclass: (rebuild function, type, its arguments, state).
    if (f == "torch._tensor._rebuild_from_type_v2" && args.items.size() >= 3 && args.items[0]->is(K::Global) &&
        args.items[2]->is(K::Tuple) && args.items[0]->text != f)
      return call(u, *args.items[0], *args.items[2]);
    return nullptr;  // anything else stays an opaque object
  };
  hooks.call = call;
  const std::string_view pkl = zip.read(prefix + "data.pkl");
  const Unpickled u = unpickle(pkl, where + " (" + prefix + "data.pkl)", hooks);

  const PyValue* dict = u.root;
  if (!detail_torch::is_tensor_dict(dict)) {
    const PyValue* inner = nullptr;
    if (dict && dict->is(K::Dict))
      for (const char* key : {"state_dict", "model_state_dict", "model", "module"})
        if (!inner && detail_torch::is_tensor_dict(dict->get(key))) inner = dict->get(key);
    if (!inner) {
      // A whole module saved with torch.save(model) is a pickled object of its class.
      SEEMORE_CHECK(!(dict && dict->is(K::Object)), where, ": holds a pickled ", dict->text,
                    " object (torch.save(model)?), not a state dict: save model.state_dict() instead");
      std::string keys;
      if (dict && dict->is(K::Dict))
        for (size_t i = 0; i < dict->items.size() && i < 20; i += 2)
          keys += (keys.empty() ? "" : ", ") +
                  (dict->items[i]->is(K::Str) ? "'" + dict->items[i]->text + "'" : std::string("?"));
      detail::fail(where, ": holds a ", dict ? py_kind_name(dict->kind) : "nothing",
                   keys.empty() ? std::string() : " with keys " + keys,
                   ", not a state dict (a dict of tensors, or one under 'state_dict', 'model_state_dict', "
                   "'model' or 'module')");
    }
    dict = inner;
  }

  SafeTensors out;
  std::map<std::string, std::string_view> storages;
  for (size_t i = 0; i < dict->items.size(); i += 2) {
    const std::string& name = dict->items[i]->text;
    const TensorRef& t = *detail_torch::as_tensor(dict->items[i + 1]);
    SEEMORE_CHECK(t.storage->element, where, ": tensor '", name, "' is of type ", t.storage->type,
                  "; only float32, float16, bfloat16 and float64 tensors load");
    auto it = storages.find(t.storage->key);
    if (it == storages.end()) it = storages.emplace(t.storage->key, zip.read(prefix + "data/" + t.storage->key)).first;
    const std::string_view data = it->second;
    const FloatType type = *t.storage->element;
    const int es = size_of(type);
    const uint64_t capacity = data.size() / uint64_t(es);
    // Every addressed element inside the storage, with no overflow on the way.
    int64_t numel = 1;
    uint64_t last = 0;
    SEEMORE_CHECK(t.offset >= 0, where, ": tensor '", name, "' has a negative storage offset");
    for (size_t d = 0; d < t.size.size(); ++d) {
      SEEMORE_CHECK(t.size[d] >= 0 && t.stride[d] >= 0 && t.size[d] <= (int64_t(1) << 40) &&
                        t.stride[d] <= (int64_t(1) << 40),
                    where, ": tensor '", name, "' has a bad size or stride in dimension ", d);
      SEEMORE_CHECK(t.size[d] == 0 || numel <= (int64_t(1) << 40) / t.size[d], where, ": tensor '", name,
                    "' is too large");
      numel *= t.size[d];
      if (t.size[d] > 0) last += uint64_t(t.size[d] - 1) * uint64_t(t.stride[d]);
    }
    SEEMORE_CHECK(numel == 0 || (uint64_t(t.offset) < capacity && last < capacity - uint64_t(t.offset) &&
                                 uint64_t(numel) <= capacity),
                  where, ": tensor '", name, "' of ", numel, " elements addresses past the end of its storage '",
                  t.storage->key, "' (", capacity, " elements)");
    auto tensor = Tensor<float>::empty(Shape(t.size.begin(), t.size.end()));
    float* dst = tensor.data();
    const char* base = data.data() + uint64_t(t.offset) * uint64_t(es);
    // Row-major strides (what a state dict almost always holds): one run of elements.
    bool contiguous = true;
    for (size_t d = t.size.size(), want = 1; d-- > 0; want *= size_t(t.size[d]))
      contiguous = contiguous && (t.size[d] == 1 || uint64_t(t.stride[d]) == want);
    if (contiguous) {
      load_floats(type, base, numel, dst);
    } else {  // walk the elements in row-major order, keeping a multi-index
      std::vector<int64_t> idx(t.size.size(), 0);
      uint64_t at = 0;
      for (int64_t k = 0; k < numel; ++k) {
        dst[k] = load_float(type, base + at * uint64_t(es));
        for (size_t d = t.size.size(); d-- > 0;) {
          if (++idx[d] < t.size[d]) {
            at += uint64_t(t.stride[d]);
            break;
          }
          at -= uint64_t(t.size[d] - 1) * uint64_t(t.stride[d]);
          idx[d] = 0;
        }
      }
    }
    out.tensors.emplace_back(name, tensor);
  }
  return out;
}

inline SafeTensors load_torch_file(const std::string& path) { return parse_torch_file(read_file_bytes(path), path); }

}  // namespace seemore::io
