// seemore/io/pickle.hpp — a restricted reader of Python pickles (protocols
// 1 to 5): it builds plain values and never runs anything.
//
// Python's unpickler imports whatever a file names and calls it, which is why
// a pickle from elsewhere is unsafe to load in Python. This one only builds
// data: None, bools, ints, floats, strings, bytes, tuples, lists and dicts,
// and for a "global" (module.name) a token holding its name. Calling a global
// (REDUCE, NEWOBJ) goes to a hook the caller gives, which may build something
// it knows (torch's tensor rebuild, OrderedDict) and otherwise returns an
// opaque object; BUILD (setting an object's state) is recorded on opaque
// objects, not run (a pickled nn.Module is such an object, its __dict__ the
// state). Sets are read as lists.
// Persistent ids (how torch refers to its storages) go to a second hook.
// Every read is bounds-checked; the memo and the stack are bounded. Values
// live in an arena owned by the result, so a pickle that puts a list inside
// itself makes a cycle of plain pointers, not a leak.
#pragma once

#include <seemore/config.hpp>
#include <seemore/io/endian.hpp>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace seemore::io {

struct PyValue;
using PyRef = PyValue*;  // owned by an Unpickled's arena

struct PyValue {
  enum class Kind { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Object };
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  std::string text;            // Str, Bytes; Global and Object: "module.name"
  std::vector<PyRef> items;    // Tuple, List; Dict: key, value, key, value...
  std::shared_ptr<void> native;  // what a hook built (a tensor's description), else null
  PyValue* state = nullptr;      // Object: what BUILD gave it (its __dict__, usually), else null

  bool is(Kind k) const { return kind == k; }
  bool is_sequence() const { return kind == Kind::Tuple || kind == Kind::List; }
  // The value of a dict under a string key, or null.
  PyRef get(const std::string& key) const {
    for (size_t i = 0; i + 1 < items.size(); i += 2)
      if (items[i]->is(Kind::Str) && items[i]->text == key) return items[i + 1];
    return nullptr;
  }
};

// The values of one pickle; `root` is what it returns, `end` the offset just
// past its STOP (a file may hold several pickles in a row).
struct Unpickled {
  std::vector<std::unique_ptr<PyValue>> arena;
  PyRef root = nullptr;
  size_t end = 0;
  PyRef make(PyValue::Kind k) {
    arena.push_back(std::make_unique<PyValue>());
    arena.back()->kind = k;
    return arena.back().get();
  }
};

inline const char* py_kind_name(PyValue::Kind k) {
  static const char* names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list", "dict", "global",
                                "object"};
  return names[int(k)];
}

// Hooks make their values with the Unpickled they are given.
struct PickleHooks {
  // callable (a Global) applied to args (a Tuple): a value, or null for "opaque object".
  std::function<PyRef(Unpickled&, const PyValue& callable, const PyValue& args)> call;
  // A persistent id (any value) to the object it names.
  std::function<PyRef(Unpickled&, const PyValue& pid)> persistent_load;
};

// Reads one pickle from `data`; `where` starts every error message.
inline Unpickled unpickle(std::string_view data, const std::string& where, const PickleHooks& hooks) {
  using K = PyValue::Kind;
  Unpickled out;
  size_t pos = 0;
  std::vector<PyRef> stack;
  std::vector<size_t> marks;
  std::unordered_map<uint64_t, PyRef> memo;
  std::unordered_map<const PyValue*, std::unordered_map<std::string, size_t>> dict_index;  // key → value's slot
  constexpr size_t kMaxStack = size_t(1) << 21, kMaxMemo = size_t(1) << 21, kMaxValues = size_t(1) << 21;
  auto fail = [&](auto&&... parts) -> void { detail::fail(where, ": pickle at byte ", pos, ": ", parts...); };
  auto need = [&](size_t n) {
    if (n > data.size() - pos) fail("truncated (", n, " bytes needed, ", data.size() - pos, " left)");
  };
  auto le = [&](int n) {
    need(size_t(n));
    const uint64_t v = load_le(data.data() + pos, n);
    pos += size_t(n);
    return v;
  };
  auto bytes = [&](uint64_t n) {
    if (n > data.size() - pos) fail("truncated (", n, " bytes needed, ", data.size() - pos, " left)");
    std::string s(data.substr(pos, size_t(n)));
    pos += size_t(n);
    return s;
  };
  auto line = [&] {
    const size_t end = data.find('\n', pos);
    if (end == std::string_view::npos) fail("unterminated text field");
    std::string s(data.substr(pos, end - pos));
    pos = end + 1;
    return s;
  };
  auto push = [&](PyRef v) {
    if (stack.size() >= kMaxStack) fail("stack too deep");
    stack.push_back(v);
  };
  auto pop = [&] {
    if (stack.empty() || (!marks.empty() && stack.size() <= marks.back())) fail("stack underflow");
    PyRef v = stack.back();
    stack.pop_back();
    return v;
  };
  auto top = [&]() -> PyRef& {
    if (stack.empty() || (!marks.empty() && stack.size() <= marks.back())) fail("stack underflow");
    return stack.back();
  };
  auto pop_mark = [&] {  // the items above the last mark, in order
    if (marks.empty()) fail("no mark");
    std::vector<PyRef> items(stack.begin() + std::ptrdiff_t(marks.back()), stack.end());
    stack.resize(marks.back());
    marks.pop_back();
    return items;
  };
  auto scalar = [&](K k) {
    // A state dict's pickle holds tens of thousands of values; this bounds
    // what a hostile one can make us allocate (~130 bytes a value).
    if (out.arena.size() >= kMaxValues) fail("more than ", kMaxValues, " values");
    return out.make(k);
  };
  auto integer = [&](int64_t v) {
    auto r = scalar(K::Int);
    r->integer = v;
    return r;
  };
  auto text = [&](K k, std::string s) {
    auto r = scalar(k);
    r->text = std::move(s);
    return r;
  };
  auto tuple = [&](std::vector<PyRef> items) {
    auto r = scalar(K::Tuple);
    r->items = std::move(items);
    return r;
  };
  auto set_items = [&](PyRef d, std::vector<PyRef>& kv) {
    if (kv.size() % 2) fail("odd number of items for SETITEMS");
    if (d->is(K::Object)) return;  // an opaque object's items are not kept
    if (!d->is(K::Dict)) fail("SETITEM on a ", py_kind_name(d->kind));
    // A string key set again replaces its value, as in Python (an index keeps that linear).
    auto& index = dict_index[d];
    for (size_t i = 0; i < kv.size(); i += 2) {
      if (kv[i]->is(K::Str)) {
        auto [it, fresh] = index.emplace(kv[i]->text, d->items.size() + 1);
        if (!fresh) {
          d->items[it->second] = kv[i + 1];
          continue;
        }
      }
      d->items.push_back(kv[i]), d->items.push_back(kv[i + 1]);
    }
  };
  auto append_items = [&](PyRef l, std::vector<PyRef>& v) {
    if (l->is(K::Object)) return;
    if (!l->is(K::List)) fail("APPEND or ADDITEMS on a ", py_kind_name(l->kind));
    l->items.insert(l->items.end(), v.begin(), v.end());
  };
  auto call = [&](PyRef callable, PyRef args) {
    if (!args->is(K::Tuple)) fail("call arguments are a ", py_kind_name(args->kind), ", not a tuple");
    PyRef r = callable->is(K::Global) && hooks.call ? hooks.call(out, *callable, *args) : nullptr;
    if (!r) r = text(K::Object, callable->is(K::Global) ? callable->text : std::string("?"));
    return r;
  };
  auto memo_put = [&](uint64_t key) {
    if (memo.size() >= kMaxMemo && !memo.count(key)) fail("memo too large");
    memo[key] = top();
  };
  auto memo_get = [&](uint64_t key) {
    auto it = memo.find(key);
    if (it == memo.end()) fail("memo key ", key, " was never stored");
    push(it->second);
  };

  for (;;) {
    need(1);
    const uint8_t op = uint8_t(data[pos++]);
    switch (op) {
      case 0x80: le(1); break;                          // PROTO
      case 0x95: le(8); break;                          // FRAME: framing only
      case '.': {                                       // STOP
        PyRef v = pop();
        if (!stack.empty() || !marks.empty()) fail("items left on the stack at STOP");
        out.root = v;
        out.end = pos;
        return out;
      }
      case '(': marks.push_back(stack.size()); break;   // MARK
      case '0': pop(); break;                           // POP
      case '1': pop_mark(); break;                      // POP_MARK
      case '2': push(top()); break;                     // DUP
      case 'N': push(scalar(K::None)); break;
      case 0x88: case 0x89: {                           // NEWTRUE, NEWFALSE
        auto b = scalar(K::Bool);
        b->boolean = op == 0x88;
        push(b);
        break;
      }
      case 'J': push(integer(int32_t(uint32_t(le(4))))); break;  // BININT
      case 'K': push(integer(int64_t(le(1)))); break;            // BININT1
      case 'M': push(integer(int64_t(le(2)))); break;            // BININT2
      case 0x8a: {                                               // LONG1: little-endian two's complement
        const uint64_t n = le(1);
        if (n > 8) fail("integer of ", n, " bytes is too large");
        uint64_t v = n ? le(int(n)) : 0;
        if (n && n < 8 && (v >> (8 * n - 1) & 1)) v |= ~uint64_t(0) << (8 * n);
        push(integer(int64_t(v)));
        break;
      }
      case 'I': case 'L': {                                      // INT, LONG: decimal text (protocol 1)
        std::string t = line();
        if (op == 'L' && !t.empty() && t.back() == 'L') t.pop_back();
        if (op == 'I' && (t == "00" || t == "01")) {             // how protocol 1 writes False and True
          auto b = scalar(K::Bool);
          b->boolean = t == "01";
          push(b);
          break;
        }
        size_t at = t.size() > 1 && (t[0] == '-' || t[0] == '+') ? 1 : 0;
        if (at == t.size() || t.find_first_not_of("0123456789", at) != std::string::npos)
          fail("integer '", t, "' is not decimal");
        uint64_t v = 0;
        for (size_t i = at; i < t.size(); ++i) {
          if (v > (uint64_t(1) << 63) / 10) fail("integer ", t, " is too large");
          v = v * 10 + uint64_t(t[i] - '0');
        }
        const bool negative = t[0] == '-';
        if (v > (uint64_t(1) << 63) - (negative ? 0 : 1)) fail("integer ", t, " is too large");
        push(integer(negative ? int64_t(0 - v) : int64_t(v)));
        break;
      }
      case 'G': {                                                // BINFLOAT: big-endian double
        need(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = bits << 8 | uint8_t(data[pos + size_t(i)]);
        pos += 8;
        auto f = scalar(K::Float);
        std::memcpy(&f->real, &bits, 8);
        push(f);
        break;
      }
      case 'X': push(text(K::Str, bytes(le(4)))); break;         // BINUNICODE
      case 0x8c: push(text(K::Str, bytes(le(1)))); break;        // SHORT_BINUNICODE
      case 0x8d: push(text(K::Str, bytes(le(8)))); break;        // BINUNICODE8
      case 'T': push(text(K::Bytes, bytes(le(4)))); break;       // BINSTRING
      case 'U': push(text(K::Bytes, bytes(le(1)))); break;       // SHORT_BINSTRING
      case 'B': push(text(K::Bytes, bytes(le(4)))); break;       // BINBYTES
      case 'C': push(text(K::Bytes, bytes(le(1)))); break;       // SHORT_BINBYTES
      case 0x8e: push(text(K::Bytes, bytes(le(8)))); break;      // BINBYTES8
      case ')': push(tuple({})); break;                          // EMPTY_TUPLE
      case 't': push(tuple(pop_mark())); break;                  // TUPLE
      case 0x85: case 0x86: case 0x87: {                         // TUPLE1..3
        std::vector<PyRef> items(size_t(op - 0x84));
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push(tuple(std::move(items)));
        break;
      }
      case ']': push(scalar(K::List)); break;                    // EMPTY_LIST
      case 'l': {                                                // LIST
        auto l = scalar(K::List);
        l->items = pop_mark();
        push(l);
        break;
      }
      case 'a': {                                                // APPEND
        std::vector<PyRef> v{pop()};
        append_items(top(), v);
        break;
      }
      case 'e': {                                                // APPENDS
        auto v = pop_mark();
        append_items(top(), v);
        break;
      }
      case '}': push(scalar(K::Dict)); break;                    // EMPTY_DICT
      case 'd': {                                                // DICT
        auto kv = pop_mark();
        auto d = scalar(K::Dict);
        set_items(d, kv);
        push(d);
        break;
      }
      case 's': {                                                // SETITEM
        std::vector<PyRef> kv(2);
        kv[1] = pop(), kv[0] = pop();
        set_items(top(), kv);
        break;
      }
      case 'u': {                                                // SETITEMS
        auto kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case 'c': {                                                // GLOBAL: "module\nname\n"
        std::string module = line();
        push(text(K::Global, module + "." + line()));
        break;
      }
      case 0x93: {                                               // STACK_GLOBAL
        PyRef name = pop(), module = pop();
        if (!name->is(K::Str) || !module->is(K::Str)) fail("STACK_GLOBAL needs two strings");
        push(text(K::Global, module->text + "." + name->text));
        break;
      }
      case 'R': {                                                // REDUCE
        PyRef args = pop(), callable = pop();
        push(call(callable, args));
        break;
      }
      case 0x81: {                                               // NEWOBJ: cls.__new__(cls, *args)
        PyRef args = pop(), cls = pop();
        push(call(cls, args));
        break;
      }
      case 0x92: {                                               // NEWOBJ_EX
        pop();
        PyRef args = pop(), cls = pop();
        push(call(cls, args));
        break;
      }
      case 0x8f: push(scalar(K::List)); break;                   // EMPTY_SET (protocol 4): a list
      case 0x90: {                                               // ADDITEMS
        auto v = pop_mark();
        append_items(top(), v);
        break;
      }
      case 0x91: {                                               // FROZENSET
        auto l = scalar(K::List);
        l->items = pop_mark();
        push(l);
        break;
      }
      case 'b': {                                                // BUILD: state recorded on opaque objects only
        PyRef state = pop();
        PyRef obj = top();
        if (obj->is(K::Object) && !obj->native) obj->state = state;
        break;
      }
      case 'Q': {                                                // BINPERSID
        PyRef pid = pop();
        if (!hooks.persistent_load) fail("persistent id without a loader");
        PyRef r = hooks.persistent_load(out, *pid);
        if (!r) fail("unknown persistent id");
        push(r);
        break;
      }
      case 'q': memo_put(le(1)); break;                          // BINPUT
      case 'r': memo_put(le(4)); break;                          // LONG_BINPUT
      case 0x94: memo_put(memo.size()); break;                   // MEMOIZE
      case 'h': memo_get(le(1)); break;                          // BINGET
      case 'j': memo_get(le(4)); break;                          // LONG_BINGET
      default: {
        --pos;
        fail("opcode 0x", "0123456789abcdef"[op >> 4], "0123456789abcdef"[op & 15],
             " is not supported (a pickle of protocol 1 or later holding plain data and tensors is)");
      }
    }
  }
}

}  // namespace seemore::io
