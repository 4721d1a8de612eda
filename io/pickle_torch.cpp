// torch state-dict rules for the restricted unpickler, and the flattening of the unpickled dict.
// What torch.save(model.state_dict()) writes (protocol 2): an OrderedDict built by REDUCE with no
// arguments, filled by SETITEMS, given its `_metadata` attribute by BUILD; each value a
// _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) REDUCE whose
// storage is a persistent id ('storage', torch.FloatStorage, key, location, numel).
#include "io/pickle_torch.h"

#include <map>
#include <set>

#include "io/pickle_vm.h"

namespace vdit::pickle {
namespace {

constexpr uint32_t kTagStorage = 1;
constexpr uint32_t kTagTensor = 2;
constexpr size_t kMaxRank = 64;
constexpr int64_t kMaxDim = int64_t{1} << 48;
constexpr uint64_t kMaxNumel = uint64_t{1} << 60;

struct StorageType {
  const char* name;
  DType dtype;
};
constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", DType::f32}, {"HalfStorage", DType::f16},  {"BFloat16Storage", DType::bf16},
    {"DoubleStorage", DType::f64}, {"LongStorage", DType::i64}, {"IntStorage", DType::i32},
    {"ShortStorage", DType::i16}, {"CharStorage", DType::i8},   {"ByteStorage", DType::u8},
    {"BoolStorage", DType::boolean},
};

const char* const kRebuildTensor = "torch._utils._rebuild_tensor_v2";
const char* const kRebuildParameter = "torch._utils._rebuild_parameter";
const char* const kRebuildParameterWithState = "torch._utils._rebuild_parameter_with_state";
const char* const kOrderedDict = "collections.OrderedDict";

class TorchRules : public Rules {
 public:
  std::vector<TorchStorage> storages;
  std::vector<TorchTensor> tensors;  // unnamed until flattening

  bool allow_global(const std::string& module, const std::string& name) const override {
    if (module == "collections") return name == "OrderedDict";
    if (module == "torch._utils") {
      return name == "_rebuild_tensor_v2" || name == "_rebuild_parameter" || name == "_rebuild_parameter_with_state";
    }
    if (module == "torch") {
      for (const auto& t : kStorageTypes) {
        if (name == t.name) return true;
      }
    }
    return false;
  }

  std::string allowed_globals() const override {
    return "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter[_with_state] and "
           "torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage";
  }

  Result<ObjId> reduce(Arena& a, ObjId callable, ObjId args) override {
    const std::string& fn = a[callable].text;
    const std::vector<ObjId> argv = a[args].items;  // a copy: `a` may grow below
    if (fn == kOrderedDict) return make_ordered_dict(a, argv);
    if (fn == kRebuildTensor) return rebuild_tensor(a, argv);
    if (fn == kRebuildParameter || fn == kRebuildParameterWithState) {
      size_t want = fn == kRebuildParameter ? 3 : 4;
      if (argv.size() != want || !is_tensor(a, argv[0])) {
        return format_error(strfmt("%s expects (tensor, requires_grad, hooks%s), got %s", fn.c_str(),
                                   want == 4 ? ", state" : "", a.describe(args).c_str()));
      }
      return argv[0];  // a parameter is its data here
    }
    return format_error(a.describe(callable) + " cannot be called (a storage type is only valid inside a persistent id)");
  }

  Result<ObjId> persistent_load(Arena& a, ObjId pid) override {
    const Object& t = a[pid];
    if (t.kind != Kind::tuple || t.items.size() != 5 || a[t.items[0]].kind != Kind::string || a[t.items[0]].text != "storage" ||
        a[t.items[1]].kind != Kind::global || a[t.items[2]].kind != Kind::string || a[t.items[3]].kind != Kind::string ||
        a[t.items[4]].kind != Kind::integer) {
      return format_error("persistent id " + a.describe(pid) +
                          " is not ('storage', torch.<Type>Storage, key, location, numel) as torch.save writes");
    }
    const std::string& type = a[t.items[1]].text;
    const std::string& key = a[t.items[2]].text;
    int64_t numel = a[t.items[4]].integer;
    const StorageType* st = nullptr;
    for (const auto& s : kStorageTypes) {
      if (type == std::string("torch.") + s.name) st = &s;
    }
    if (!st) return format_error("persistent id names " + a.describe(t.items[1]) + ", which is not a storage type");
    if (numel < 0 || static_cast<uint64_t>(numel) > kMaxNumel) {
      return format_error(strfmt("storage \"%s\" has an invalid element count %lld", key.c_str(), static_cast<long long>(numel)));
    }
    if (key.empty() || key.find('/') != std::string::npos || key.size() > 64) {
      return format_error("storage key " + a.describe(t.items[2]) + " is not a plain record name");
    }
    auto [it, inserted] = storage_index_.emplace(std::make_pair(key, st->dtype), static_cast<uint32_t>(storages.size()));
    uint32_t index = it->second;
    if (inserted) storages.push_back({key, st->dtype, static_cast<uint64_t>(numel)});
    if (storages[index].numel != static_cast<uint64_t>(numel)) {
      return format_error(strfmt("storage \"%s\" is referenced with two sizes (%llu and %lld elements)", key.c_str(),
                                 static_cast<unsigned long long>(storages[index].numel), static_cast<long long>(numel)));
    }
    Object o;
    o.kind = Kind::opaque;
    o.tag = kTagStorage;
    o.ext = index;
    o.text = "storage " + key;
    return a.add(std::move(o));
  }

  // torch sets the module's `_metadata` (an OrderedDict of per-module versions) on the state dict with
  // BUILD; vdit needs none of it, so a dict of attributes on a dict is accepted and dropped.
  Status build(Arena& a, ObjId target, ObjId state) override {
    if (a[target].kind == Kind::dict && a[state].kind == Kind::dict) {
      const auto& kv = a[state].items;
      for (size_t i = 0; i < kv.size(); i += 2) {
        if (a[kv[i]].kind != Kind::string) return format_error("BUILD state has a non-string attribute name " + a.describe(kv[i]));
      }
      return Status::ok();
    }
    return format_error("BUILD on " + a.describe(target) + " with " + a.describe(state) +
                        " is not allowed (a state dict only sets attributes like _metadata on its dict)");
  }

 private:
  std::map<std::pair<std::string, DType>, uint32_t> storage_index_;  // (key, dtype) -> storages index

  static bool is_tensor(const Arena& a, ObjId id) { return a[id].kind == Kind::opaque && a[id].tag == kTagTensor; }

  Result<ObjId> make_ordered_dict(Arena& a, const std::vector<ObjId>& argv) {
    Object d;
    d.kind = Kind::dict;
    VDIT_ASSIGN(ObjId id, a.add(std::move(d)));
    if (argv.empty()) return id;
    // OrderedDict([(k, v), ...])
    const Object& src = a[argv[0]];
    if (argv.size() != 1 || (src.kind != Kind::list && src.kind != Kind::tuple)) {
      return format_error("collections.OrderedDict expects no arguments or one list of pairs");
    }
    const std::vector<ObjId> pairs = src.items;
    for (ObjId p : pairs) {
      if (a[p].kind != Kind::tuple || a[p].items.size() != 2) return format_error("collections.OrderedDict item is not a pair");
      a.dict_set(id, a[p].items[0], a[p].items[1]);
    }
    return id;
  }

  Result<std::vector<int64_t>> int_tuple(const Arena& a, ObjId id, const char* what) {
    const Object& o = a[id];
    if ((o.kind != Kind::tuple && o.kind != Kind::list) || o.items.size() > kMaxRank) {
      return format_error(strfmt("_rebuild_tensor_v2 %s must be a tuple of at most %zu ints, got %s", what, kMaxRank,
                                 a.describe(id).c_str()));
    }
    std::vector<int64_t> v;
    for (ObjId i : o.items) {
      if (a[i].kind != Kind::integer || a[i].integer < 0 || a[i].integer > kMaxDim) {
        return format_error(strfmt("_rebuild_tensor_v2 %s has %s (must be an int in [0, 2^48])", what, a.describe(i).c_str()));
      }
      v.push_back(a[i].integer);
    }
    return v;
  }

  Result<ObjId> rebuild_tensor(Arena& a, const std::vector<ObjId>& argv) {
    if (argv.size() != 6 && argv.size() != 7) {
      return format_error(strfmt("_rebuild_tensor_v2 expects 6 or 7 arguments, got %zu", argv.size()));
    }
    const Object& st = a[argv[0]];
    if (st.kind != Kind::opaque || st.tag != kTagStorage) {
      return format_error("_rebuild_tensor_v2 needs a storage (persistent id) first, got " + a.describe(argv[0]));
    }
    if (a[argv[1]].kind != Kind::integer || a[argv[1]].integer < 0) {
      return format_error("_rebuild_tensor_v2 storage offset must be a non-negative int, got " + a.describe(argv[1]));
    }
    TorchTensor t;
    t.storage = st.ext;
    t.offset = static_cast<uint64_t>(a[argv[1]].integer);
    VDIT_ASSIGN(t.shape, int_tuple(a, argv[2], "size"));
    VDIT_ASSIGN(t.strides, int_tuple(a, argv[3], "stride"));
    if (t.shape.size() != t.strides.size()) {
      return format_error(strfmt("_rebuild_tensor_v2 size has %zu dims but stride has %zu", t.shape.size(), t.strides.size()));
    }
    // The view must lie inside the storage: offset + sum((size_i - 1) * stride_i) < numel.
    // `nonzero` (the product of the non-zero dims) is capped as well, so that code multiplying the
    // shape out never overflows, even for an empty [0, 2^40, 2^40].
    unsigned __int128 numel = 1, nonzero = 1, last = t.offset;
    for (size_t i = 0; i < t.shape.size(); ++i) {
      numel *= static_cast<uint64_t>(t.shape[i]);
      if (t.shape[i] > 0) nonzero *= static_cast<uint64_t>(t.shape[i]);
      if (numel > kMaxNumel) numel = kMaxNumel + 1;  // saturate; only "zero or not" and the cap matter
      if (nonzero > kMaxNumel) nonzero = kMaxNumel + 1;
      if (t.shape[i] > 0) last += static_cast<unsigned __int128>(t.shape[i] - 1) * static_cast<uint64_t>(t.strides[i]);
    }
    const TorchStorage& s = storages[t.storage];
    if (nonzero > kMaxNumel) return format_error("_rebuild_tensor_v2 size has more than 2^60 elements");
    if (numel > 0 && last >= s.numel) {
      return format_error(strfmt("tensor view (offset %llu, size %s, stride %s) reaches outside its storage \"%s\" of %llu elements",
                                 static_cast<unsigned long long>(t.offset), shape_str(t.shape).c_str(),
                                 shape_str(t.strides).c_str(), s.key.c_str(), static_cast<unsigned long long>(s.numel)));
    }
    tensors.push_back(std::move(t));
    Object o;
    o.kind = Kind::opaque;
    o.tag = kTagTensor;
    o.ext = static_cast<uint32_t>(tensors.size() - 1);
    o.text = "tensor";
    return a.add(std::move(o));
  }
};

std::string scalar_text(const Object& o) {
  switch (o.kind) {
    case Kind::boolean: return o.integer ? "true" : "false";
    case Kind::integer: return strfmt("%lld", static_cast<long long>(o.integer));
    case Kind::floating: return strfmt("%.17g", o.floating);
    case Kind::string: return o.text;
    default: return {};
  }
}
bool is_scalar(const Object& o) {
  return o.kind == Kind::boolean || o.kind == Kind::integer || o.kind == Kind::floating || o.kind == Kind::string;
}

// Adds the tensors and scalars of `dict` under `prefix`. A nested dict is descended once, so both a
// plain state dict and a checkpoint like {"state_dict": {...}, "epoch": 3} (or {"model": {...}}) read
// as flat names joined with a dot ("state_dict.encoder.weight"); deeper values (optimizer state) and
// lists are left out.
Status flatten(TorchStateDict* out, const Arena& a, const TorchRules& rules, ObjId dict, const std::string& prefix, int depth,
               std::set<std::string>* names) {
  const auto& kv = a[dict].items;
  for (size_t i = 0; i < kv.size(); i += 2) {
    const Object& key = a[kv[i]];
    const Object& value = a[kv[i + 1]];
    bool is_tensor = value.kind == Kind::opaque && value.tag == kTagTensor;
    if (key.kind != Kind::string) {
      if (is_tensor) return format_error("a tensor is stored under the non-string key " + a.describe(kv[i]));
      continue;
    }
    std::string name = prefix + key.text;
    if (names->size() + out->metadata.size() >= a.size()) {
      // Each value needs its own key in the pickle; more names than values means one dict is shared
      // many times over, which would multiply the output (N references x N tensors).
      return format_error("the pickle reuses one dict so often that flattening it would list more names than it has values");
    }
    if (is_tensor) {
      if (!names->insert(name).second) return format_error("tensor name \"" + name + "\" appears twice after flattening");
      TorchTensor t = rules.tensors[value.ext];
      t.name = name;
      out->tensors.push_back(std::move(t));
    } else if (value.kind == Kind::dict && depth == 0) {
      VDIT_TRY(flatten(out, a, rules, kv[i + 1], name + ".", depth + 1, names));
    } else if (is_scalar(value)) {
      out->metadata[name] = scalar_text(value);
    }
  }
  return Status::ok();
}

}  // namespace

Result<TorchStateDict> load_torch_state_dict(const uint8_t* data, size_t size, const std::string& where) {
  Arena arena;
  TorchRules rules;
  VDIT_ASSIGN(ObjId root, unpickle(arena, data, size, rules, where));
  if (arena[root].kind != Kind::dict) {
    return format_error(where + ": the checkpoint holds a " + arena.describe(root) +
                        ", not a state dict: save with torch.save(model.state_dict(), path)");
  }
  TorchStateDict out;
  std::set<std::string> names;
  Status s = flatten(&out, arena, rules, root, "", 0, &names);
  if (!s) return s.with_context(where);
  out.storages = std::move(rules.storages);
  return out;
}

bool is_contiguous_view(const Shape& shape, const Shape& strides) {
  for (int64_t d : shape) {
    if (d == 0) return true;  // an empty view has no layout (and the product below could overflow)
  }
  int64_t expect = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && strides[i] != expect) return false;
    expect *= shape[i];
  }
  return true;
}

}  // namespace vdit::pickle
