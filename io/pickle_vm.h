// A restricted unpickler: it runs the pickle opcodes of protocols 2-5 that plain data needs (ints,
// floats, strings, bytes, tuples, lists, dicts, memo, marks) into an arena of inert values, and hands
// every GLOBAL, REDUCE, BUILD and persistent id to caller-supplied rules, which decide what is allowed.
// It never imports or calls anything: a global outside the rules' allow-list stops the load with an
// error naming it. It does not know torch (see io/pickle_torch.h) and does not write pickles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dit/core/status.h"

namespace vdit::pickle {

using ObjId = uint32_t;

enum class Kind : uint8_t {
  none,
  boolean,
  integer,   // int64 (longer Python ints are refused)
  floating,
  string,    // str (and protocol-1 byte strings)
  bytes,
  tuple,
  list,
  dict,      // insertion-ordered; a later SETITEM with an equal str key replaces the value
  global,    // an allow-listed "module.name" reference (text)
  opaque,    // a value made by the rules (a storage, a tensor): `tag` and `ext` are theirs
};

const char* kind_name(Kind k);

struct Object {
  Kind kind = Kind::none;
  int64_t integer = 0;       // integer, boolean
  double floating = 0;
  std::string text;          // string, bytes, global ("module.name"), opaque (a type name for messages)
  std::vector<ObjId> items;  // tuple / list items; dict: key0, value0, key1, value1, ...
  uint32_t tag = 0;          // opaque: the rules' kind of value
  uint32_t ext = 0;          // opaque: index into the rules' own tables
  std::unique_ptr<std::unordered_map<std::string, size_t>> str_keys;  // dict: str key -> position in items/2
};

// Owns every value of one load. Values refer to each other by id, so cycles and deep nesting cost
// nothing to free (no recursive destructors).
class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  const Object& operator[](ObjId id) const { return objects_[id]; }
  Object& at(ObjId id) { return objects_[id]; }
  size_t size() const { return objects_.size(); }
  // New value; fails once the arena holds `max_objects`.
  Result<ObjId> add(Object o);
  Result<ObjId> add_none() { return add(Object{}); }
  // Dict helpers: value for a str key (or nullptr), and insertion with replacement of equal str keys.
  const ObjId* dict_get(ObjId dict, const std::string& key) const;
  void dict_set(ObjId dict, ObjId key, ObjId value);
  // Short description for messages: `str "abc"`, `int 5`, `tuple of 3`, `global os.system`.
  std::string describe(ObjId id) const;

  size_t max_objects = 10'000'000;  // about 1.5 GB of values; a large model's pickle needs ~10 per tensor

 private:
  std::deque<Object> objects_;  // stable addresses, no per-value allocation
};

// What the caller allows. Each hook gets the location string for its messages.
class Rules {
 public:
  virtual ~Rules() = default;
  // Whether GLOBAL `module name` may be referenced at all.
  virtual bool allow_global(const std::string& module, const std::string& name) const = 0;
  // The allowed globals, for the refusal message.
  virtual std::string allowed_globals() const = 0;
  // REDUCE: call the allow-listed `callable` (a Kind::global) with the tuple `args`.
  virtual Result<ObjId> reduce(Arena& arena, ObjId callable, ObjId args) = 0;
  // BINPERSID with the popped persistent id.
  virtual Result<ObjId> persistent_load(Arena& arena, ObjId pid) = 0;
  // BUILD: set `state` on `target`.
  virtual Status build(Arena& arena, ObjId target, ObjId state) = 0;
};

// Runs the pickle in `data[0, size)` to its STOP opcode and returns the top value. `where` (e.g.
// "model.pth: archive/data.pkl") starts every error message, which also names the opcode and offset.
Result<ObjId> unpickle(Arena& arena, const uint8_t* data, size_t size, Rules& rules, const std::string& where);

}  // namespace vdit::pickle
