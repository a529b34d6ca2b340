// seemore/io/torch_file.hpp — the tensors of a file written by torch.save,
// without Python and without running anything the file names.
//
// Two layouts. The ZIP format (PyTorch 1.6 and later): an archive
// (io/zip.hpp) with "<name>/data.pkl", a pickle (io/pickle.hpp) of the saved
// object, and "<name>/data/<key>", the raw bytes of each storage. The legacy
// format (before 1.6, or _use_new_zipfile_serialization=False): five pickles
// in a row (a magic number, the protocol version 1001, the writer's
// endianness and type sizes, the saved object, the list of storage keys),
// then each listed storage as its element count (int64, little-endian) and
// its bytes. In both, a tensor in the pickle is a call to
// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...), the
// storage a persistent id ("storage", torch.FloatStorage, key, location,
// numel[, view]). We rebuild float32, float16, bfloat16 and float64 tensors
// (as float), any strides and offsets, after checking that every element
// they address lies inside the storage's bytes.
//
// The state dict is the saved object itself when it is a dict of tensors
// (torch.save(model.state_dict(), f)), or a pickled nn.Module
// (torch.save(model, f)), whose parameters and persistent buffers we collect
// as Module.state_dict() names them, without its class; or either of these
// under "state_dict", "model_state_dict", "model" or "module" of a saved
// training checkpoint. Whatever else the file holds (optimizer state,
// numbers, objects we do not know) is read as plain data and left alone.
#pragma once

#include <seemore/io/file.hpp>
#include <seemore/io/pickle.hpp>
#include <seemore/io/safetensors.hpp>
#include <seemore/io/zip.hpp>

#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace seemore::io {

inline bool is_zip(const std::string& b) { return b.size() >= 4 && b.compare(0, 4, "PK\x03\x04") == 0; }
namespace detail_torch {
// Where the legacy format's first pickle, its magic number 0x1950a86a20f9469cfc6c
// (a 10-byte LONG1), ends; 0 when `b` does not start with it. Any pickle
// protocol from 2 (a FRAME opcode from 4).
inline size_t legacy_magic_end(std::string_view b) {
  static const char magic[] = "\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
  if (b.size() < 2 || b[0] != '\x80' || b[1] < 2 || b[1] > 5) return 0;
  size_t at = 2;
  if (b.size() > at && b[at] == '\x95') at += 9;
  return b.size() >= at + sizeof magic - 1 && b.compare(at, sizeof magic - 1, magic) == 0 ? at + sizeof magic - 1 : 0;
}
}  // namespace detail_torch

// torch.save's legacy format (before PyTorch 1.6, or _use_new_zipfile_serialization=False).
inline bool is_legacy_torch(const std::string& b) { return detail_torch::legacy_magic_end(b) != 0; }

namespace detail_torch {
struct Storage {
  std::string type;  // "torch.FloatStorage"...
  std::string key;   // its member under data/ (ZIP), or its place in the storage list (legacy)
  std::optional<FloatType> element;  // none: not a float type we read
  // A legacy view: `view_elements` elements from element `view_offset` of the storage `key`.
  bool view = false;
  uint64_t view_offset = 0, view_elements = 0;
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
// Bytes per element of every storage type torch.save writes; 0 for a name it never writes.
// The legacy format needs them all: each storage's bytes follow its element count.
inline int element_size(const std::string& type) {
  static const std::map<std::string, int> sizes = {
      {"torch.DoubleStorage", 8},  {"torch.FloatStorage", 4},         {"torch.HalfStorage", 2},
      {"torch.BFloat16Storage", 2}, {"torch.LongStorage", 8},         {"torch.IntStorage", 4},
      {"torch.ShortStorage", 2},   {"torch.CharStorage", 1},          {"torch.ByteStorage", 1},
      {"torch.BoolStorage", 1},    {"torch.ComplexFloatStorage", 8},  {"torch.ComplexDoubleStorage", 16},
      {"torch.QInt8Storage", 1},   {"torch.QUInt8Storage", 1},        {"torch.QInt32Storage", 4},
      {"torch.QUInt4x2Storage", 1}, {"torch.QUInt2x4Storage", 1},     {"torch.UntypedStorage", 1}};
  auto it = sizes.find(type);
  return it == sizes.end() ? 0 : it->second;
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
// A pickled nn.Module: an object whose state (its __dict__) has _parameters and _modules dicts.
inline bool is_module(const PyValue* v) {
  using K = PyValue::Kind;
  if (!v || !v->is(K::Object) || !v->state || !v->state->is(K::Dict)) return false;
  const PyValue *p = v->state->get("_parameters"), *m = v->state->get("_modules");
  return p && p->is(K::Dict) && m && m->is(K::Dict);
}

using Named = std::vector<std::pair<std::string, const TensorRef*>>;

// What Module.state_dict() returns, in its order: a module's parameters, then
// its persistent buffers, then each child's under "<child>.". None entries
// (a Linear without bias) are skipped, as state_dict() skips them. A child
// met again (a shared module) is listed again, as state_dict() does; the
// walk is bounded in depth and in entries, so a pickle whose modules refer
// to each other in a cycle, or in a lattice of exponentially many paths,
// cannot run away.
inline void module_state(const PyValue& m, const std::string& prefix, int depth, size_t& budget, Named& out,
                         const std::string& where) {
  using K = PyValue::Kind;
  SEEMORE_CHECK(depth < 256, where, ": nn.Module nested more than 256 deep at '", prefix, "'");
  const PyValue& st = *m.state;
  std::unordered_set<std::string> transient;  // _non_persistent_buffers_set: not in the state dict
  if (const PyValue* np = st.get("_non_persistent_buffers_set"); np && np->is(K::List))
    for (const PyValue* n : np->items)
      if (n->is(K::Str)) transient.insert(n->text);
  for (const char* group : {"_parameters", "_buffers"}) {
    const PyValue* d = st.get(group);
    if (!d) continue;
    SEEMORE_CHECK(d->is(K::Dict), where, ": module '", prefix, "' has ", group, " of type ", py_kind_name(d->kind));
    for (size_t i = 0; i < d->items.size(); i += 2) {
      SEEMORE_CHECK(d->items[i]->is(K::Str), where, ": module '", prefix, "' has a ", group, " key that is not a string");
      const std::string& name = d->items[i]->text;
      const PyValue* v = d->items[i + 1];
      if (v->is(K::None) || (group[1] == 'b' && transient.count(name))) continue;
      const TensorRef* t = as_tensor(v);
      SEEMORE_CHECK(t, where, ": '", prefix + name, "' in ", group, " of a pickled nn.Module is a ",
                    v->is(K::Object) ? v->text : std::string(py_kind_name(v->kind)), ", not a tensor");
      SEEMORE_CHECK(budget-- > 0, where, ": pickled nn.Module lists more than 262144 tensors and modules");
      out.emplace_back(prefix + name, t);
    }
  }
  const PyValue* children = st.get("_modules");
  for (size_t i = 0; i < children->items.size(); i += 2) {
    const PyValue* v = children->items[i + 1];
    if (v->is(K::None)) continue;
    SEEMORE_CHECK(children->items[i]->is(K::Str) && is_module(v), where, ": module '", prefix,
                  "' has a child that is not a pickled nn.Module");
    SEEMORE_CHECK(budget-- > 0, where, ": pickled nn.Module lists more than 262144 tensors and modules");
    module_state(*v, prefix + children->items[i]->text + ".", depth + 1, budget, out, where);
  }
}

// The named tensors of the saved object, or an error saying what it holds instead.
inline Named state_dict_of(const PyValue* root, const std::string& where) {
  using K = PyValue::Kind;
  auto take = [&](const PyValue* v, Named& out) {
    if (is_tensor_dict(v)) {
      for (size_t i = 0; i < v->items.size(); i += 2) out.emplace_back(v->items[i]->text, as_tensor(v->items[i + 1]));
      return true;
    }
    if (is_module(v)) {
      size_t budget = size_t(1) << 18;
      module_state(*v, "", 0, budget, out, where);
      return true;
    }
    return false;
  };
  Named out;
  if (take(root, out)) return out;
  if (root && root->is(K::Dict))
    for (const char* key : {"state_dict", "model_state_dict", "model", "module"})
      if (take(root->get(key), out)) return out;
  SEEMORE_CHECK(!(root && root->is(K::Object)), where, ": holds a pickled ", root->text,
                " object, neither a state dict nor an nn.Module");
  std::string keys;
  if (root && root->is(K::Dict))
    for (size_t i = 0; i < root->items.size() && i < 40; i += 2)
      keys += (keys.empty() ? "" : ", ") +
              (root->items[i]->is(K::Str) ? "'" + root->items[i]->text + "'" : std::string("?"));
  detail::fail(where, ": holds a ", root ? py_kind_name(root->kind) : "nothing",
               keys.empty() ? std::string() : " with keys " + keys,
               ", not a state dict (a dict of tensors or an nn.Module, or one under 'state_dict', "
               "'model_state_dict', 'model' or 'module')");
}

// A call in the pickle (REDUCE, NEWOBJ): the tensors, parameters, ordered
// dicts and sets torch.save writes; null (an opaque object) for anything else.
inline PyRef torch_call(Unpickled& u, const PyValue& fn, const PyValue& args, const std::string& where) {
  using K = PyValue::Kind;
  const std::string& f = fn.text;
  auto bad = [&](const char* what) { detail::fail(where, ": ", f, ": ", what); };
  if (f == "collections.OrderedDict") return u.make(K::Dict);
  // A set (protocol 2 pickles it as set([items])): its items as a list.
  if (f == "__builtin__.set" || f == "builtins.set" || f == "__builtin__.frozenset" || f == "builtins.frozenset")
    return !args.items.empty() && args.items[0]->is(K::List) ? args.items[0] : u.make(K::List);
  if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
    if (args.items.size() < 4) bad("fewer than 4 arguments");
    const PyValue* st = args.items[0];
    if (!st->is(K::Object) || st->text != "torch.Storage" || !st->native) bad("argument 1 is not a storage");
    auto t = std::make_shared<TensorRef>();
    t->storage = std::static_pointer_cast<Storage>(st->native);
    if (!args.items[1]->is(K::Int)) bad("the storage offset is not an integer");
    t->offset = args.items[1]->integer;
    auto ints = [&](const PyValue* v, std::vector<int64_t>& out, const char* what) {
      if (!v->is_sequence()) bad(what);
      for (auto* x : v->items) {
        if (!x->is(K::Int)) bad(what);
        out.push_back(x->integer);
      }
    };
    ints(args.items[2], t->size, "the size is not a tuple of integers");
    ints(args.items[3], t->stride, "the stride is not a tuple of integers");
    if (t->size.size() != t->stride.size()) bad("size and stride differ in length");
    PyRef r = u.make(K::Object);
    r->text = "torch.Tensor";
    r->native = t;
    return r;
  }
  // nn.Parameter(data, requires_grad, hooks): the data is the tensor.
  if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state")
    return !args.items.empty() && as_tensor(args.items[0]) ? args.items[0] : nullptr;
  // A tensor subclass: (rebuild function, type, its arguments, state).
  if (f == "torch._tensor._rebuild_from_type_v2" && args.items.size() >= 3 && args.items[0]->is(K::Global) &&
      args.items[2]->is(K::Tuple) && args.items[0]->text != f)
    return torch_call(u, *args.items[0], *args.items[2], where);
  return nullptr;
}

// The hooks that turn torch's calls and persistent ids into storages and
// tensors; `storages` collects the storages the pickle names, by key.
inline PickleHooks tensor_hooks(const std::string& where, std::map<std::string, std::shared_ptr<Storage>>& storages) {
  using K = PyValue::Kind;
  PickleHooks hooks;
  hooks.persistent_load = [where, &storages](Unpickled& u, const PyValue& pid) -> PyRef {
    auto bad = [&](const std::string& what) { detail::fail(where, ": persistent id: ", what); };
    // The legacy format names each nn.Module class as ('module', class, source file, source).
    if (pid.is(K::Tuple) && pid.items.size() == 4 && pid.items[0]->is(K::Str) && pid.items[0]->text == "module" &&
        pid.items[1]->is(K::Global))
      return pid.items[1];
    if (!pid.is(K::Tuple) || pid.items.size() < 5 || !pid.items[0]->is(K::Str) || pid.items[0]->text != "storage" ||
        !pid.items[1]->is(K::Global) || !pid.items[2]->is(K::Str))
      bad("expected ('storage', type, key, location, size) or ('module', class, file, source)");
    auto s = std::make_shared<Storage>();
    s->type = pid.items[1]->text;
    s->key = pid.items[2]->text;
    s->element = float_type(s->type);
    // The legacy format's views of a storage: (view key, offset, size), in elements.
    if (pid.items.size() >= 6 && !pid.items[5]->is(K::None)) {
      const PyValue& v = *pid.items[5];
      if (!v.is(K::Tuple) || v.items.size() != 3 || !v.items[0]->is(K::Str) || !v.items[1]->is(K::Int) ||
          !v.items[2]->is(K::Int) || v.items[1]->integer < 0 || v.items[2]->integer < 0)
        bad("a storage view is not (key, offset, size)");
      s->view = true;
      s->view_offset = uint64_t(v.items[1]->integer);
      s->view_elements = uint64_t(v.items[2]->integer);
    }
    auto [it, fresh] = storages.emplace(s->key, s);
    if (!fresh && it->second->type != s->type) bad("storage '" + s->key + "' is named with two types");
    PyRef r = u.make(K::Object);
    r->text = "torch.Storage";
    r->native = s;
    return r;
  };
  hooks.call = [where](Unpickled& u, const PyValue& fn, const PyValue& args) { return torch_call(u, fn, args, where); };
  return hooks;
}

// The tensors of `named`, each checked against its storage's bytes (`bytes_of`
// gives them by key) and converted to float.
inline SafeTensors rebuild(const Named& named, const std::function<std::string_view(const Storage&)>& bytes_of,
                           const std::string& where) {
  // First every tensor checked, then the memory: a small file whose tensors
  // all view one storage must not make us allocate its size a million times.
  std::map<const Storage*, std::string_view> data;
  std::unordered_set<std::string> counted;  // each tensor names its storage anew: count each key once
  uint64_t stored = 0, wanted = 0;
  for (auto& [name, t] : named) {
    SEEMORE_CHECK(t->storage->element, where, ": tensor '", name, "' is of type ", t->storage->type,
                  "; only float32, float16, bfloat16 and float64 tensors load");
    auto it = data.find(t->storage.get());
    if (it == data.end()) {
      it = data.emplace(t->storage.get(), bytes_of(*t->storage)).first;
      if (counted.insert(t->storage->key).second) stored += it->second.size() / uint64_t(size_of(*t->storage->element));
    }
    const uint64_t capacity = it->second.size() / uint64_t(size_of(*t->storage->element));
    // Every addressed element inside the storage, with no overflow on the way.
    int64_t numel = 1;
    uint64_t last = 0;
    SEEMORE_CHECK(t->offset >= 0, where, ": tensor '", name, "' has a negative storage offset");
    for (size_t d = 0; d < t->size.size(); ++d) {
      SEEMORE_CHECK(t->size[d] >= 0 && t->stride[d] >= 0 && t->size[d] <= (int64_t(1) << 40) &&
                        t->stride[d] <= (int64_t(1) << 40),
                    where, ": tensor '", name, "' has a bad size or stride in dimension ", d);
      SEEMORE_CHECK(t->size[d] == 0 || numel <= (int64_t(1) << 40) / t->size[d], where, ": tensor '", name,
                    "' is too large");
      numel *= t->size[d];
      if (t->size[d] > 0) last += uint64_t(t->size[d] - 1) * uint64_t(t->stride[d]);
    }
    SEEMORE_CHECK(numel == 0 || (uint64_t(t->offset) < capacity && last < capacity - uint64_t(t->offset) &&
                                 uint64_t(numel) <= capacity),
                  where, ": tensor '", name, "' of ", numel, " elements addresses past the end of its storage '",
                  t->storage->key, "' (", capacity, " elements)");
    wanted += uint64_t(numel);
  }
  // Tied weights view a storage twice; sixteen times what the file stores is not a model.
  SEEMORE_CHECK(wanted <= 16 * stored + (uint64_t(1) << 16), where, ": its tensors address ", wanted,
                " elements in all, more than 16 times the ", stored, " its storages hold");

  SafeTensors out;
  for (auto& [name, t] : named) {
    const FloatType type = *t->storage->element;
    const int es = size_of(type);
    auto tensor = Tensor<float>::empty(Shape(t->size.begin(), t->size.end()));
    const int64_t numel = tensor.numel();
    float* dst = tensor.data();
    const char* base = data.at(t->storage.get()).data() + uint64_t(t->offset) * uint64_t(es);
    // Row-major strides (what a state dict almost always holds): one run of elements.
    bool contiguous = true;
    for (size_t d = t->size.size(), want = 1; d-- > 0; want *= size_t(t->size[d]))
      contiguous = contiguous && (t->size[d] == 1 || uint64_t(t->stride[d]) == want);
    if (contiguous) {
      load_floats(type, base, numel, dst);
    } else {  // walk the elements in row-major order, keeping a multi-index
      std::vector<int64_t> idx(t->size.size(), 0);
      uint64_t at = 0;
      for (int64_t k = 0; k < numel; ++k) {
        dst[k] = load_float(type, base + at * uint64_t(es));
        for (size_t d = t->size.size(); d-- > 0;) {
          if (++idx[d] < t->size[d]) {
            at += uint64_t(t->stride[d]);
            break;
          }
          at -= uint64_t(t->size[d] - 1) * uint64_t(t->stride[d]);
          idx[d] = 0;
        }
      }
    }
    out.tensors.emplace_back(name, tensor);
  }
  return out;
}

// The legacy format: its pickles, then the storages' bytes in the order of the key list.
inline SafeTensors parse_legacy_torch_file(const std::string& bytes, const std::string& where) {
  using K = PyValue::Kind;
  const std::string_view all(bytes);
  size_t pos = legacy_magic_end(all);
  SEEMORE_CHECK(pos > 0, where, ": not a legacy torch.save file");
  auto next = [&](const char* what, const PickleHooks& hooks) {
    Unpickled u = unpickle(all.substr(pos), where + " (" + what + " pickle at byte " + std::to_string(pos) + ")", hooks);
    pos += u.end;
    return u;
  };
  const Unpickled version = next("protocol version", {});
  SEEMORE_CHECK(version.root->is(K::Int) && version.root->integer == 1001, where,
                ": legacy torch.save protocol version is not 1001");
  const Unpickled info = next("system info", {});
  if (info.root->is(K::Dict))
    if (const PyValue* le = info.root->get("little_endian"); le && le->is(K::Bool))
      SEEMORE_CHECK(le->boolean, where, ": written on a big-endian machine, which is not supported");
  std::map<std::string, std::shared_ptr<Storage>> storages;
  const Unpickled main = next("saved object", tensor_hooks(where, storages));
  const Named named = state_dict_of(main.root, where);
  const Unpickled keys = next("storage keys", {});
  SEEMORE_CHECK(keys.root->is(K::List), where, ": the storage keys are a ", py_kind_name(keys.root->kind),
                ", not a list");
  std::map<std::string, std::string_view> stored;
  for (const PyValue* k : keys.root->items) {
    SEEMORE_CHECK(k->is(K::Str), where, ": a storage key is a ", py_kind_name(k->kind), ", not a string");
    auto it = storages.find(k->text);
    SEEMORE_CHECK(it != storages.end(), where, ": storage '", k->text, "' is listed but no tensor names it");
    const int es = element_size(it->second->type);
    SEEMORE_CHECK(es > 0, where, ": storage '", k->text, "' is of unknown type ", it->second->type);
    SEEMORE_CHECK(all.size() - pos >= 8, where, ": storage '", k->text, "' at byte ", pos, ": file ends early");
    const uint64_t n = load_le(all.data() + pos, 8);
    pos += 8;
    SEEMORE_CHECK(n <= (all.size() - pos) / uint64_t(es), where, ": storage '", k->text, "' at byte ", pos - 8,
                  " says ", n, " elements of ", es, " bytes, but ", all.size() - pos, " bytes are left");
    SEEMORE_CHECK(stored.emplace(k->text, all.substr(pos, size_t(n) * size_t(es))).second, where, ": storage '",
                  k->text, "' is listed twice");
    pos += size_t(n) * size_t(es);
  }
  return rebuild(
      named,
      [&](const Storage& s) {
        auto it = stored.find(s.key);
        SEEMORE_CHECK(it != stored.end(), where, ": storage '", s.key, "' is not in the file");
        std::string_view b = it->second;
        if (s.view) {
          const uint64_t es = uint64_t(size_of(*s.element));
          SEEMORE_CHECK(s.view_offset <= b.size() / es && s.view_elements <= b.size() / es - s.view_offset, where,
                        ": a view of storage '", s.key, "' reaches past its end");
          b = b.substr(size_t(s.view_offset * es), size_t(s.view_elements * es));
        }
        return b;
      },
      where);
}
}  // namespace detail_torch

// Parses torch.save bytes, either format; `where` (the file name) starts
// every error message. The result has the state dict's tensors in its order
// and no metadata.
inline SafeTensors parse_torch_file(const std::string& bytes, const std::string& where) {
  if (is_legacy_torch(bytes)) return detail_torch::parse_legacy_torch_file(bytes, where);
  SEEMORE_CHECK(is_zip(bytes), where, ": not a torch.save file (neither a ZIP archive nor the legacy format)");
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
  std::map<std::string, std::shared_ptr<detail_torch::Storage>> storages;
  const Unpickled u = unpickle(zip.read(prefix + "data.pkl"), where + " (" + prefix + "data.pkl)",
                               detail_torch::tensor_hooks(where, storages));
  std::map<std::string, std::string_view> members;  // each read (and its CRC checked) once, however many tensors view it
  return detail_torch::rebuild(
      detail_torch::state_dict_of(u.root, where),
      [&](const detail_torch::Storage& s) {
        auto it = members.find(s.key);
        if (it == members.end()) it = members.emplace(s.key, zip.read(prefix + "data/" + s.key)).first;
        return it->second;
      },
      where);
}

inline SafeTensors load_torch_file(const std::string& path) { return parse_torch_file(read_file_bytes(path), path); }

}  // namespace seemore::io
