// The restricted pickle machine: a loop over opcodes with a value stack, Python 3's mark semantics
// (MARK starts a new frame; nothing below it is reachable until the frame is popped) and a memo.
// Every read is bounds-checked; opcodes that build arbitrary objects (INST, OBJ, NEWOBJ, EXT*, ...)
// and the text forms of protocol 0 are refused by name.
#include "io/pickle_vm.h"

#include <cstring>

namespace vdit::pickle {
namespace {

const char* opcode_name(uint8_t op) {
  switch (op) {
    case 'I': return "INT"; case 'J': return "BININT"; case 'K': return "BININT1"; case 'M': return "BININT2";
    case 'L': return "LONG"; case 0x8a: return "LONG1"; case 0x8b: return "LONG4"; case 'S': return "STRING";
    case 'T': return "BINSTRING"; case 'U': return "SHORT_BINSTRING"; case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES"; case 0x8e: return "BINBYTES8"; case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER"; case 0x98: return "READONLY_BUFFER"; case 'N': return "NONE";
    case 0x88: return "NEWTRUE"; case 0x89: return "NEWFALSE"; case 'V': return "UNICODE";
    case 0x8c: return "SHORT_BINUNICODE"; case 'X': return "BINUNICODE"; case 0x8d: return "BINUNICODE8";
    case 'F': return "FLOAT"; case 'G': return "BINFLOAT"; case ']': return "EMPTY_LIST"; case 'a': return "APPEND";
    case 'e': return "APPENDS"; case 'l': return "LIST"; case ')': return "EMPTY_TUPLE"; case 't': return "TUPLE";
    case 0x85: return "TUPLE1"; case 0x86: return "TUPLE2"; case 0x87: return "TUPLE3"; case '}': return "EMPTY_DICT";
    case 'd': return "DICT"; case 's': return "SETITEM"; case 'u': return "SETITEMS"; case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS"; case 0x91: return "FROZENSET"; case '0': return "POP"; case '2': return "DUP";
    case '(': return "MARK"; case '1': return "POP_MARK"; case 'g': return "GET"; case 'h': return "BINGET";
    case 'j': return "LONG_BINGET"; case 'p': return "PUT"; case 'q': return "BINPUT"; case 'r': return "LONG_BINPUT";
    case 0x94: return "MEMOIZE"; case 0x82: return "EXT1"; case 0x83: return "EXT2"; case 0x84: return "EXT4";
    case 'c': return "GLOBAL"; case 0x93: return "STACK_GLOBAL"; case 'R': return "REDUCE"; case 'b': return "BUILD";
    case 'i': return "INST"; case 'o': return "OBJ"; case 0x81: return "NEWOBJ"; case 0x92: return "NEWOBJ_EX";
    case 0x80: return "PROTO"; case '.': return "STOP"; case 0x95: return "FRAME"; case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
  }
  return nullptr;
}

// Text from the file, safe to put in a one-line message.
std::string printable(const std::string& s, size_t max_len = 80) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max_len; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += strfmt("\\x%02x", c);
    }
  }
  if (s.size() > max_len) out += "...";
  return out;
}

class Machine {
 public:
  Machine(Arena& arena, const uint8_t* data, size_t size, Rules& rules, const std::string& where)
      : arena_(arena), p_(data), size_(size), rules_(rules), where_(where) {}

  Result<ObjId> run() {
    while (pos_ < size_) {
      op_pos_ = pos_;
      op_ = p_[pos_++];
      bool stop = false;
      VDIT_TRY(step(&stop));
      if (stop) return result_;
    }
    return format_error(strfmt("%s: pickle ends at byte %zu without a STOP opcode: truncated or corrupt", where_.c_str(), size_));
  }

 private:
  Arena& arena_;
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  uint8_t op_ = 0;
  Rules& rules_;
  const std::string& where_;
  std::vector<ObjId> stack_;
  std::vector<size_t> marks_;  // stack sizes at each MARK; the top one is the current frame's base
  std::unordered_map<uint32_t, ObjId> memo_;
  ObjId result_ = 0;

  Status fail(const std::string& what) const {
    const char* n = opcode_name(op_);
    return format_error(strfmt("%s: pickle opcode %s at byte %zu: %s", where_.c_str(), n ? n : "?", op_pos_, what.c_str()));
  }
  size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
  size_t avail() const { return stack_.size() - base(); }

  Status need(size_t n) const {
    if (size_ - pos_ < n) return fail(strfmt("needs %zu more bytes but the pickle ends: truncated", n));
    return Status::ok();
  }
  Status read(void* dst, size_t n) {
    VDIT_TRY(need(n));
    std::memcpy(dst, p_ + pos_, n);
    pos_ += n;
    return Status::ok();
  }
  template <class T>
  Status read_le(T* v) {  // little-endian unsigned of sizeof(T) bytes
    VDIT_TRY(need(sizeof(T)));
    uint64_t x = 0;
    for (size_t i = 0; i < sizeof(T); ++i) x |= static_cast<uint64_t>(p_[pos_ + i]) << (8 * i);
    pos_ += sizeof(T);
    *v = static_cast<T>(x);
    return Status::ok();
  }
  Status read_line(std::string* out) {
    const void* nl = std::memchr(p_ + pos_, '\n', size_ - pos_);
    if (!nl) return fail("a text line without its newline: truncated");
    size_t end = static_cast<size_t>(static_cast<const uint8_t*>(nl) - p_);
    out->assign(reinterpret_cast<const char*>(p_ + pos_), end - pos_);
    pos_ = end + 1;
    return Status::ok();
  }

  Status push_new(Object o) {
    VDIT_ASSIGN(ObjId id, arena_.add(std::move(o)));
    stack_.push_back(id);
    return Status::ok();
  }
  Status push_int(int64_t v, Kind k = Kind::integer) {
    Object o;
    o.kind = k;
    o.integer = v;
    return push_new(std::move(o));
  }
  Status push_text(Kind k, size_t n) {
    VDIT_TRY(need(n));
    Object o;
    o.kind = k;
    o.text.assign(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return push_new(std::move(o));
  }
  Result<ObjId> pop() {
    if (avail() == 0) return fail("the stack is empty");
    ObjId id = stack_.back();
    stack_.pop_back();
    return id;
  }
  Result<ObjId> top() const {
    if (avail() == 0) return fail("the stack is empty");
    return stack_.back();
  }
  // Pops the current frame (everything since the last MARK) and the mark itself.
  Result<std::vector<ObjId>> pop_mark() {
    if (marks_.empty()) return fail("no MARK to pop to");
    size_t b = marks_.back();
    marks_.pop_back();
    std::vector<ObjId> items(stack_.begin() + static_cast<std::ptrdiff_t>(b), stack_.end());
    stack_.resize(b);
    return items;
  }
  Status make_seq(Kind k, std::vector<ObjId> items) {
    Object o;
    o.kind = k;
    o.items = std::move(items);
    return push_new(std::move(o));
  }
  Status expect_kind(ObjId id, Kind k, const char* role) const {
    if (arena_[id].kind != k) return fail(strfmt("%s must be a %s, got %s", role, kind_name(k), arena_.describe(id).c_str()));
    return Status::ok();
  }
  Status set_items(ObjId dict, const std::vector<ObjId>& kv) {
    VDIT_TRY(expect_kind(dict, Kind::dict, "the target"));
    if (kv.size() % 2) return fail("an odd number of keys and values");
    for (size_t i = 0; i < kv.size(); i += 2) arena_.dict_set(dict, kv[i], kv[i + 1]);
    return Status::ok();
  }
  Status memo_put(uint32_t idx) {
    VDIT_ASSIGN(ObjId v, top());
    memo_[idx] = v;
    return Status::ok();
  }
  Status memo_get(uint32_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) return fail(strfmt("memo entry %u was never stored", idx));
    stack_.push_back(it->second);
    return Status::ok();
  }
  Status push_global(const std::string& module, const std::string& name) {
    if (!rules_.allow_global(module, name)) {
      return format_error(strfmt("%s: pickle %s '%s.%s' at byte %zu is not allowed (a state dict needs only %s); refusing to load, "
                                 "nothing was executed",
                                 where_.c_str(), opcode_name(op_), printable(module).c_str(), printable(name).c_str(), op_pos_,
                                 rules_.allowed_globals().c_str()));
    }
    Object o;
    o.kind = Kind::global;
    o.text = module + "." + name;
    return push_new(std::move(o));
  }
  Status push_long(size_t n) {
    if (n > 8) return fail(strfmt("an integer of %zu bytes is too large (vdit reads up to 64-bit integers)", n));
    VDIT_TRY(need(n));
    uint64_t x = 0;
    for (size_t i = 0; i < n; ++i) x |= static_cast<uint64_t>(p_[pos_ + i]) << (8 * i);
    if (n > 0 && n < 8 && (p_[pos_ + n - 1] & 0x80)) x |= ~uint64_t{0} << (8 * n);  // sign-extend
    pos_ += n;
    return push_int(static_cast<int64_t>(x));
  }

  Status step(bool* stop);
};

Status Machine::step(bool* stop) {
  switch (op_) {
    case 0x80: {  // PROTO
      uint8_t v = 0;
      VDIT_TRY(read_le(&v));
      if (v > 5) return fail(strfmt("protocol %u is newer than pickle's 5", v));
      return Status::ok();
    }
    case 0x95: {  // FRAME: a buffering hint; the opcodes inside read the same without it
      uint64_t n = 0;
      VDIT_TRY(read_le(&n));
      if (n > size_ - pos_) return fail("a frame longer than the rest of the pickle: truncated");
      return Status::ok();
    }
    case '.': {  // STOP
      VDIT_ASSIGN(result_, pop());
      *stop = true;
      return Status::ok();
    }
    case '(':  // MARK
      marks_.push_back(stack_.size());
      return Status::ok();
    case '0':  // POP: the top value, or an empty frame's mark (as CPython does)
      if (avail() > 0) {
        stack_.pop_back();
        return Status::ok();
      }
      return pop_mark().status();
    case '1':  // POP_MARK
      return pop_mark().status();
    case '2': {  // DUP
      VDIT_ASSIGN(ObjId v, top());
      stack_.push_back(v);
      return Status::ok();
    }
    case 'N': return push_new(Object{});
    case 0x88: return push_int(1, Kind::boolean);
    case 0x89: return push_int(0, Kind::boolean);
    case 'J': {
      uint32_t v = 0;
      VDIT_TRY(read_le(&v));
      return push_int(static_cast<int32_t>(v));
    }
    case 'K': {
      uint8_t v = 0;
      VDIT_TRY(read_le(&v));
      return push_int(v);
    }
    case 'M': {
      uint16_t v = 0;
      VDIT_TRY(read_le(&v));
      return push_int(v);
    }
    case 0x8a: {  // LONG1
      uint8_t n = 0;
      VDIT_TRY(read_le(&n));
      return push_long(n);
    }
    case 0x8b: {  // LONG4
      uint32_t n = 0;
      VDIT_TRY(read_le(&n));
      return push_long(n);
    }
    case 'G': {  // BINFLOAT: big-endian IEEE double
      uint8_t b[8];
      VDIT_TRY(read(b, 8));
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];
      Object o;
      o.kind = Kind::floating;
      std::memcpy(&o.floating, &bits, 8);
      return push_new(std::move(o));
    }
    case 'X': case 'T': case 'B': {  // BINUNICODE, BINSTRING, BINBYTES: 4-byte length
      uint32_t n = 0;
      VDIT_TRY(read_le(&n));
      return push_text(op_ == 'B' ? Kind::bytes : Kind::string, n);
    }
    case 0x8c: case 'U': case 'C': {  // SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES: 1-byte length
      uint8_t n = 0;
      VDIT_TRY(read_le(&n));
      return push_text(op_ == 'C' ? Kind::bytes : Kind::string, n);
    }
    case 0x8d: case 0x8e: {  // BINUNICODE8, BINBYTES8
      uint64_t n = 0;
      VDIT_TRY(read_le(&n));
      if (n > size_ - pos_) return fail("a length past the end of the pickle: truncated");
      return push_text(op_ == 0x8e ? Kind::bytes : Kind::string, static_cast<size_t>(n));
    }
    case ')': return make_seq(Kind::tuple, {});
    case ']': return make_seq(Kind::list, {});
    case '}': return make_seq(Kind::dict, {});
    case 't': {  // TUPLE
      VDIT_ASSIGN(auto items, pop_mark());
      return make_seq(Kind::tuple, std::move(items));
    }
    case 'l': {  // LIST
      VDIT_ASSIGN(auto items, pop_mark());
      return make_seq(Kind::list, std::move(items));
    }
    case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
      size_t n = static_cast<size_t>(op_ - 0x84);
      if (avail() < n) return fail(strfmt("needs %zu values on the stack", n));
      std::vector<ObjId> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
      stack_.resize(stack_.size() - n);
      return make_seq(Kind::tuple, std::move(items));
    }
    case 'd': {  // DICT
      VDIT_ASSIGN(auto kv, pop_mark());
      VDIT_TRY(make_seq(Kind::dict, {}));
      return set_items(stack_.back(), kv);
    }
    case 'a': {  // APPEND
      VDIT_ASSIGN(ObjId v, pop());
      VDIT_ASSIGN(ObjId list, top());
      VDIT_TRY(expect_kind(list, Kind::list, "the target"));
      arena_.at(list).items.push_back(v);
      return Status::ok();
    }
    case 'e': {  // APPENDS
      VDIT_ASSIGN(auto vs, pop_mark());
      VDIT_ASSIGN(ObjId list, top());
      VDIT_TRY(expect_kind(list, Kind::list, "the target"));
      auto& items = arena_.at(list).items;
      items.insert(items.end(), vs.begin(), vs.end());
      return Status::ok();
    }
    case 's': {  // SETITEM
      VDIT_ASSIGN(ObjId v, pop());
      VDIT_ASSIGN(ObjId k, pop());
      VDIT_ASSIGN(ObjId d, top());
      return set_items(d, {k, v});
    }
    case 'u': {  // SETITEMS
      VDIT_ASSIGN(auto kv, pop_mark());
      VDIT_ASSIGN(ObjId d, top());
      return set_items(d, kv);
    }
    case 'h': {
      uint8_t i = 0;
      VDIT_TRY(read_le(&i));
      return memo_get(i);
    }
    case 'j': {
      uint32_t i = 0;
      VDIT_TRY(read_le(&i));
      return memo_get(i);
    }
    case 'q': {
      uint8_t i = 0;
      VDIT_TRY(read_le(&i));
      return memo_put(i);
    }
    case 'r': {
      uint32_t i = 0;
      VDIT_TRY(read_le(&i));
      return memo_put(i);
    }
    case 0x94: return memo_put(static_cast<uint32_t>(memo_.size()));  // MEMOIZE
    case 'c': {  // GLOBAL "module\nname\n"
      std::string module, name;
      VDIT_TRY(read_line(&module));
      VDIT_TRY(read_line(&name));
      return push_global(module, name);
    }
    case 0x93: {  // STACK_GLOBAL
      VDIT_ASSIGN(ObjId name, pop());
      VDIT_ASSIGN(ObjId module, pop());
      VDIT_TRY(expect_kind(module, Kind::string, "the module"));
      VDIT_TRY(expect_kind(name, Kind::string, "the name"));
      return push_global(arena_[module].text, arena_[name].text);
    }
    case 'R': {  // REDUCE: callable(*args), for allow-listed callables only
      VDIT_ASSIGN(ObjId args, pop());
      VDIT_ASSIGN(ObjId fn, pop());
      VDIT_TRY(expect_kind(fn, Kind::global, "the callable"));
      VDIT_TRY(expect_kind(args, Kind::tuple, "the arguments"));
      auto r = rules_.reduce(arena_, fn, args);
      if (!r) return fail(r.status().message());
      stack_.push_back(*r);
      return Status::ok();
    }
    case 'b': {  // BUILD
      VDIT_ASSIGN(ObjId state, pop());
      VDIT_ASSIGN(ObjId target, top());
      Status s = rules_.build(arena_, target, state);
      if (!s) return fail(s.message());
      return Status::ok();
    }
    case 'Q': {  // BINPERSID
      VDIT_ASSIGN(ObjId pid, pop());
      auto r = rules_.persistent_load(arena_, pid);
      if (!r) return fail(r.status().message());
      stack_.push_back(*r);
      return Status::ok();
    }
    default: break;
  }
  const char* n = opcode_name(op_);
  if (!n) {
    return format_error(strfmt("%s: unknown pickle opcode 0x%02x at byte %zu: not a pickle, or corrupt", where_.c_str(), op_, op_pos_));
  }
  return format_error(strfmt("%s: pickle opcode %s (0x%02x) at byte %zu is not supported: a saved state dict does not use it%s",
                             where_.c_str(), n, op_, op_pos_,
                             (op_ == 'i' || op_ == 'o' || op_ == 0x81 || op_ == 0x92 || op_ == 0x82 || op_ == 0x83 || op_ == 0x84)
                                 ? " (it builds arbitrary objects; refusing to load, nothing was executed)"
                                 : ""));
}

}  // namespace

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::bytes: return "bytes";
    case Kind::tuple: return "tuple";
    case Kind::list: return "list";
    case Kind::dict: return "dict";
    case Kind::global: return "global";
    case Kind::opaque: return "object";
  }
  return "?";
}

Result<ObjId> Arena::add(Object o) {
  if (objects_.size() >= max_objects) {
    return format_error(strfmt("the pickle builds more than %zu values; refusing (a state dict needs about 10 per tensor)", max_objects));
  }
  objects_.push_back(std::move(o));
  return static_cast<ObjId>(objects_.size() - 1);
}

const ObjId* Arena::dict_get(ObjId dict, const std::string& key) const {
  const Object& d = objects_[dict];
  if (!d.str_keys) return nullptr;
  auto it = d.str_keys->find(key);
  return it == d.str_keys->end() ? nullptr : &d.items[2 * it->second + 1];
}

void Arena::dict_set(ObjId dict, ObjId key, ObjId value) {
  Object& d = objects_[dict];
  const Object& k = objects_[key];
  if (k.kind == Kind::string) {
    if (!d.str_keys) d.str_keys = std::make_unique<std::unordered_map<std::string, size_t>>();
    auto [it, inserted] = d.str_keys->emplace(k.text, d.items.size() / 2);
    if (!inserted) {
      d.items[2 * it->second + 1] = value;
      return;
    }
  }
  d.items.push_back(key);
  d.items.push_back(value);
}

std::string Arena::describe(ObjId id) const {
  const Object& o = objects_[id];
  switch (o.kind) {
    case Kind::none: return "None";
    case Kind::boolean: return o.integer ? "True" : "False";
    case Kind::integer: return strfmt("int %lld", static_cast<long long>(o.integer));
    case Kind::floating: return strfmt("float %g", o.floating);
    case Kind::string: return "str \"" + printable(o.text, 40) + "\"";
    case Kind::bytes: return strfmt("bytes of length %zu", o.text.size());
    case Kind::tuple: return strfmt("tuple of %zu", o.items.size());
    case Kind::list: return strfmt("list of %zu", o.items.size());
    case Kind::dict: return strfmt("dict of %zu", o.items.size() / 2);
    case Kind::global: return "global " + printable(o.text);
    case Kind::opaque: return printable(o.text);
  }
  return "?";
}

Result<ObjId> unpickle(Arena& arena, const uint8_t* data, size_t size, Rules& rules, const std::string& where) {
  Machine m(arena, data, size, rules, where);
  return m.run();
}

}  // namespace vdit::pickle
