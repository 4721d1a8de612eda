// The restricted unpickler on hand-written pickles: the opcodes torch emits, Python's mark/memo
// semantics, the state-dict rules (OrderedDict, _metadata BUILD, _rebuild_tensor_v2, persistent ids,
// flattening one level) and what is refused, with the message naming it.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/pickle_torch.h"

using namespace vdit;
using namespace vdit::pickle;

namespace {

// Builds protocol-2 pickles opcode by opcode.
struct Pickle {
  std::string b = "\x80\x02";
  Pickle& op(const std::string& s) { b += s; return *this; }
  Pickle& global(const std::string& module, const std::string& name) { b += "c" + module + "\n" + name + "\n"; return *this; }
  Pickle& str(const std::string& s) {
    b += 'X';
    for (int i = 0; i < 4; ++i) b += static_cast<char>((s.size() >> (8 * i)) & 0xff);
    b += s;
    return *this;
  }
  Pickle& int1(uint8_t v) { b += 'K'; b += static_cast<char>(v); return *this; }
  Pickle& ints(const std::vector<int>& v) {
    b += '(';
    for (int x : v) int1(static_cast<uint8_t>(x));
    b += 't';
    return *this;
  }
  Pickle& ordered_dict() { return global("collections", "OrderedDict").op(")R"); }
  // _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& key, int numel, int offset, const std::vector<int>& size, const std::vector<int>& stride,
                 const std::string& type = "FloatStorage") {
    global("torch._utils", "_rebuild_tensor_v2").op("(");
    op("(").str("storage").global("torch", type).str(key).str("cpu").int1(static_cast<uint8_t>(numel)).op("tQ");
    int1(static_cast<uint8_t>(offset)).ints(size).ints(stride).op("\x89");
    return ordered_dict().op("tR");
  }
  std::string done() const { return b + "."; }
};

Result<TorchStateDict> load(const std::string& bytes) {
  return load_torch_state_dict(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test.pth: archive/data.pkl");
}

void expect_error(const std::string& bytes, const std::string& substring) {
  auto r = load(bytes);
  ASSERT_FALSE(r) << "expected an error containing: " << substring;
  EXPECT_NE(r.status().message().find(substring), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().rfind("test.pth: archive/data.pkl", 0), 0u) << r.status().message();
}

TEST(PickleTorch, StateDictAsTorchWritesIt) {
  Pickle p;
  p.ordered_dict().op(std::string("q\x00(", 3));
  p.str("a.weight").tensor("0", 12, 0, {3, 4}, {4, 1});
  p.str("a.bias").tensor("1", 4, 0, {4}, {1}, "BFloat16Storage");
  p.str("view").tensor("0", 12, 2, {2, 3}, {1, 4});  // a strided view with an offset into storage "0"
  p.op("u");
  p.op("}").str("_metadata").ordered_dict().op("sb");  // BUILD: the state dict's _metadata attribute
  auto r = load(p.done());
  ASSERT_TRUE(r) << r.status().to_string();
  ASSERT_EQ(r->tensors.size(), 3u);
  ASSERT_EQ(r->storages.size(), 2u);
  const TorchTensor& w = r->tensors[0];
  EXPECT_EQ(w.name, "a.weight");
  EXPECT_EQ(shape_str(w.shape), "[3, 4]");
  EXPECT_EQ(r->storages[w.storage].key, "0");
  EXPECT_EQ(r->storages[w.storage].numel, 12u);
  EXPECT_TRUE(is_contiguous_view(w.shape, w.strides));
  EXPECT_EQ(r->storages[r->tensors[1].storage].dtype, DType::bf16);
  const TorchTensor& v = r->tensors[2];
  EXPECT_EQ(v.storage, w.storage);  // shared storage
  EXPECT_EQ(v.offset, 2u);
  EXPECT_FALSE(is_contiguous_view(v.shape, v.strides));
}

TEST(PickleTorch, PlainValuesBecomeMetadata) {
  Pickle p;
  p.op("}(");
  p.str("neg").op(std::string("\x8a\x01\xfe", 3));                 // LONG1 -2
  p.str("big").op(std::string("\x8a\x05\x00\x00\x00\x00\x02", 7));  // LONG1 2^33
  p.str("pi").op(std::string("G\x40\x0c\x00\x00\x00\x00\x00\x00", 9));  // BINFLOAT 3.5
  p.str("flag").op("\x88");                                         // NEWTRUE
  p.str("name").op(std::string("\x8c\x03xyz", 5));                  // SHORT_BINUNICODE
  p.str("blob").op(std::string("C\x02\x00\x01", 4));                // SHORT_BINBYTES: not metadata
  p.str("int4").op(std::string("J\xff\xff\xff\xff", 5));            // BININT -1
  p.op("u");
  auto r = load(p.done());
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->metadata.at("neg"), "-2");
  EXPECT_EQ(r->metadata.at("big"), "8589934592");
  EXPECT_EQ(r->metadata.at("pi"), "3.5");
  EXPECT_EQ(r->metadata.at("flag"), "true");
  EXPECT_EQ(r->metadata.at("name"), "xyz");
  EXPECT_EQ(r->metadata.count("blob"), 0u);
  EXPECT_EQ(r->metadata.at("int4"), "-1");
}

TEST(PickleTorch, MemoMarksAndStackOpcodes) {
  Pickle p;
  p.op("}");
  p.op("\x94");                                          // MEMOIZE -> memo[0] = the dict
  p.str("k").op(std::string("r\x07\x00\x00\x00", 5));   // LONG_BINPUT 7 = "k"
  p.int1(1).op("0");                                     // POP
  p.op("(").int1(9).int1(9).op("1");                     // POP_MARK drops the frame
  p.op("2").op("0");                                     // DUP, POP
  p.int1(5).op("\x85").op("0");                          // TUPLE1, POP
  p.int1(42).op("s");                                    // dict["k"] = 42
  p.op(std::string("j\x07\x00\x00\x00", 5)).int1(43).op("s");  // LONG_BINGET 7: dict["k"] = 43 (replaces)
  p.op("0").op(std::string("h\x00", 2));                 // POP the dict, BINGET it back from memo 0
  auto r = load(p.done());
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->metadata.size(), 1u);
  EXPECT_EQ(r->metadata.at("k"), "43");
}

TEST(PickleTorch, OrderedDictFromPairsAndParameters) {
  Pickle p;
  p.global("collections", "OrderedDict").op("(]");
  p.op("(").str("w");
  p.global("torch._utils", "_rebuild_parameter").op("(").tensor("0", 4, 0, {4}, {1}).op("\x88").ordered_dict().op("tR");
  p.op("t").op("a");  // [("w", Parameter)]
  p.op("tR");
  auto r = load(p.done());
  ASSERT_TRUE(r) << r.status().to_string();
  ASSERT_EQ(r->tensors.size(), 1u);
  EXPECT_EQ(r->tensors[0].name, "w");
}

TEST(PickleTorch, FlattensOneLevelOnly) {
  Pickle p;
  p.op("}").str("model").op("}").str("w").tensor("0", 4, 0, {4}, {1}).op("s");  // {"model": {"w": t}}
  p.op("s");
  p.str("opt").op("}").str("state").op("}").str("x").tensor("1", 2, 0, {2}, {1}).op("s").op("ss");  // depth 2: left out
  auto r = load(p.done());
  ASSERT_TRUE(r) << r.status().to_string();
  ASSERT_EQ(r->tensors.size(), 1u);
  EXPECT_EQ(r->tensors[0].name, "model.w");
}

TEST(PickleTorch, RefusesForeignGlobalsNamingThem) {
  expect_error(Pickle().global("os", "system").str("echo pwned").op("\x85R").done(), "pickle GLOBAL 'os.system' at byte 2 is not allowed");
  expect_error(Pickle().global("builtins", "eval").done(), "'builtins.eval'");
  expect_error(Pickle().global("torch.nn.modules.linear", "Linear").done(), "'torch.nn.modules.linear.Linear'");
  expect_error(Pickle().global("torch", "load").done(), "'torch.load'");
  expect_error(Pickle().global("collections", "defaultdict").done(), "'collections.defaultdict'");
  expect_error(Pickle().op(std::string("\x8c\x02os\x8c\x06system\x93", 13)).done(), "pickle STACK_GLOBAL 'os.system' at byte 14");
  expect_error(Pickle().global("os\x01", "x\x7f").done(), "'os\\x01.x\\x7f'");  // unprintable bytes escaped
}

TEST(PickleTorch, RefusesWhatAStateDictDoesNotContain) {
  expect_error(Pickle().op("]}b").done(), "BUILD on list of 0 with dict of 0 is not allowed");
  expect_error(Pickle().int1(1).op(")R").done(), "the callable must be a global, got int 1");
  expect_error(Pickle().global("torch", "FloatStorage").op(")R").done(), "cannot be called");
  expect_error(Pickle().str("storage").op("Q").done(), "persistent id str \"storage\" is not ('storage'");
  expect_error(Pickle().op("(").str("storage").global("torch", "FloatStorage").str("0").str("cpu").op("\x89tQ").done(),
               "is not ('storage'");
  expect_error(Pickle().global("torch._utils", "_rebuild_parameter").op("(K\x01tR").done(), "expects (tensor, requires_grad, hooks)");
  expect_error(Pickle().global("torch._utils", "_rebuild_tensor_v2").op("(K\x01tR").done(), "expects 6 or 7 arguments, got 1");
  expect_error(Pickle().op("}").int1(3).tensor("0", 4, 0, {4}, {1}).op("s").done(), "non-string key int 3");
  expect_error(Pickle().op("]").done(), "holds a list of 0, not a state dict");
  expect_error(Pickle().op(std::string("\x80\x06", 2)).done(), "protocol 6 is newer");
  expect_error(std::string("\x80\x02(K"), "pickle opcode BININT1 at byte 3: needs 1 more bytes");
  expect_error(Pickle().op("\x81").done(), "NEWOBJ (0x81) at byte 2 is not supported");
  expect_error(Pickle().op("]").op("(").int1(1).op("a").done(), "pickle opcode APPEND at byte 6: the stack is empty");
  expect_error(Pickle().op("1").done(), "no MARK to pop to");
  expect_error(Pickle().op("]").int1(1).int1(2).op("s").done(), "the target must be a dict, got list of 0");
  expect_error(std::string("\x80\x02}"), "without a STOP opcode");
  expect_error(Pickle().op("X\xff\xff\xff\x7f").done(), "needs 2147483647 more bytes");
}

TEST(PickleTorch, RefusesViewsOutsideTheirStorage) {
  auto one = [](int numel, int offset, std::vector<int> size, std::vector<int> stride) {
    return Pickle().op("}").str("w").tensor("0", numel, offset, size, stride).op("s").done();
  };
  EXPECT_TRUE(load(one(6, 0, {2, 3}, {3, 1})));
  EXPECT_TRUE(load(one(6, 5, {0, 3}, {3, 1})));  // empty views need no bytes
  expect_error(one(6, 1, {2, 3}, {3, 1}), "reaches outside its storage \"0\" of 6 elements");
  expect_error(one(6, 0, {3, 2}, {2, 3}), "reaches outside its storage");
  expect_error(one(6, 0, {2, 3}, {3}), "size has 2 dims but stride has 1");
  std::string two = Pickle().op("}").str("a").tensor("0", 6, 0, {6}, {1}).op("s").str("b").tensor("0", 8, 0, {8}, {1}).op("s").done();
  expect_error(two, "storage \"0\" is referenced with two sizes");
}

TEST(PickleTorch, RefusesOneDictSharedOverAndOver) {
  // {"k0": d, "k1": d, ...} with d = {"a": t, "b": t, "c": t}: names would grow as keys x tensors.
  auto shared = [](int refs) {
    Pickle p;
    p.op("}").op(std::string("q\x00", 2));
    p.op("(").str("a").tensor("0", 4, 0, {4}, {1}).str("b").tensor("0", 4, 0, {4}, {1}).str("c").tensor("0", 4, 0, {4}, {1}).op("u");
    p.op("0").op("}(");
    for (int i = 0; i < refs; ++i) p.str("k" + std::to_string(i)).op(std::string("h\x00", 2));
    return p.op("u").done();
  };
  auto ok = load(shared(2));
  ASSERT_TRUE(ok) << ok.status().to_string();
  EXPECT_EQ(ok->tensors.size(), 6u);
  EXPECT_EQ(ok->tensors[5].name, "k1.c");
  expect_error(shared(200), "reuses one dict so often");
}

TEST(PickleTorch, DeepNestingDoesNotOverflowTheStack) {
  // 200000 nested lists: an arena of ids frees them without recursion.
  std::string b = "\x80\x02" + std::string(200000, ']') + std::string(199999, 'a') + ".";
  expect_error(b, "not a state dict");
  // A list that contains itself.
  expect_error(Pickle().op("]q\x01h\x01" "a").done(), "not a state dict");
}

}  // namespace
