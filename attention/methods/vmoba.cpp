// VMoBA (methods.md §2): layer l splits the video into 1D/2D/3D chunks (l mod 3), gates each chunk by
// <chunk-mean key, query> and lets every query token attend its own chunk plus the selected ones (local +
// top-k, or cumulative threshold over a query_head / head_global pool). Selection is per query token, so
// the call runs in forward_sparse() on the gathered kernel with an element rule (exactly the reference's
// attention over self ∪ selected chunks), not as a BlockLayout. Not here: text tokens in the sequence.
// GPU (forward_device): the local + top-k plan runs on the device (cuda/planners/vmoba_device.h) and feeds
// the gathered block-sparse kernel (cuda/block_sparse_gathered.h) without a host round trip; the threshold
// rule and the head_global pool are CPU only.
#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <tuple>

#include "attention/cuda/block_sparse_gathered.h"
#include "attention/cuda/planners/vmoba_device.h"
#include "attention/methods/method.h"
#include "attention/methods/vmoba_kernel.h"
#include "attention/methods/vmoba_select.h"

namespace vdit::attn {
namespace {

// 64: query blocks stay small, so the union of the chunks its queries select wastes little work.
constexpr int kVmobaBlock = 64;

class VmobaMethod : public AttentionMethod {
 public:
  nlohmann::json preset(const ModelInfo& model) const override {
    // methods.md §2.1 Table 4 (Wan2.1-1.3B, training-free inference: local + top-k) and §2.5 (first 25% of
    // steps dense). 720p grid 45x80: 2D 9x10, 3D 7x15x20, k 2/10/9; otherwise the 480p setting (30x52):
    // 2D 5x13, 3D 7x5x13, k 2/6/18 (chunks are clipped on other grids). The 14B model has no published
    // setting; the same shape-based preset is used.
    const bool p720 = model.grid.h == 45 && model.grid.w == 80;
    nlohmann::json chunks = {{"1d", 3},
                             {"2d", p720 ? std::vector<int>{9, 10} : std::vector<int>{5, 13}},
                             {"3d", p720 ? std::vector<int>{7, 15, 20} : std::vector<int>{7, 5, 13}}};
    return {{"dense_step_fraction", 0.25},
            {"chunks", chunks},
            {"select", "topk"},
            {"topk", p720 ? std::vector<int>{2, 10, 9} : std::vector<int>{2, 6, 18}},
            {"threshold", 0.25},
            {"pool", "query_head"}};
  }

 protected:
  Status configure_method(ConfigReader& cfg) override {
    // Chunk entries the config leaves out keep the shape-based preset's (also under "preset": "none").
    VDIT_TRY(parse_chunks(preset(model_)["chunks"]));
    if (const nlohmann::json* j = cfg.get_raw("chunks")) VDIT_TRY(parse_chunks(*j));
    std::string select = select_ == VmobaSelect::topk ? "topk" : "threshold";
    VDIT_TRY(cfg.get_string("select", &select, {"topk", "threshold"}));
    select_ = select == "topk" ? VmobaSelect::topk : VmobaSelect::threshold;
    if (const nlohmann::json* j = cfg.get_raw("topk")) {
      std::vector<int64_t> k;
      if (j->is_number_integer()) {
        k.assign(3, j->get<int64_t>());
      } else if (j->is_array() && j->size() == 3) {
        for (const auto& e : *j) {
          if (!e.is_number_integer()) break;
          k.push_back(e.get<int64_t>());
        }
      }
      const bool ok = k.size() == 3 && *std::min_element(k.begin(), k.end()) >= 1 &&
                      *std::max_element(k.begin(), k.end()) <= 1000000;
      if (!ok) {
        return invalid_argument(strfmt("vmoba attention config: key \"topk\" = %s: expected [k1d, k2d, k3d], chunks "
                                       "per query including the own chunk, each in [1, 1000000]",
                                       j->dump().c_str()));
      }
      for (int i = 0; i < 3; ++i) topk_[i] = static_cast<int>(k[static_cast<size_t>(i)]);
    }
    VDIT_TRY(cfg.get_double("threshold", &threshold_, 0.0, 1.0, /*lo_open=*/true));
    std::string pool = pool_ == VmobaPool::query_head ? "query_head" : "head_global";
    VDIT_TRY(cfg.get_string("pool", &pool, {"query_head", "head_global"}));
    pool_ = pool == "query_head" ? VmobaPool::query_head : VmobaPool::head_global;
    VDIT_TRY(cfg.get_bool("record_gates", &record_gates_));
    return Status::ok();
  }

  nlohmann::json describe_method() const override {
    nlohmann::json chunks = nlohmann::json::object();
    chunks["1d"] = box_[0][0];
    chunks["2d"] = nlohmann::json::array({box_[1][1], box_[1][2]});
    chunks["3d"] = nlohmann::json::array({box_[2][0], box_[2][1], box_[2][2]});
    return {{"chunks", chunks},
            {"select", select_ == VmobaSelect::topk ? "topk" : "threshold"},
            {"topk", topk_},
            {"threshold", threshold_},
            {"pool", pool_ == VmobaPool::query_head ? "query_head" : "head_global"},
            {"record_gates", record_gates_}};
  }

  Status forward_sparse(const AttentionCall& call, const QKV& in, const AttentionDst& dst, CallRecord* rec) override {
    if (call.text_len != 0) {
      return unsupported(strfmt("vmoba partitions video tokens only; this call has %lld text tokens in the "
                                "self-attention sequence", static_cast<long long>(call.text_len)));
    }
    const int kind = call.layer % 3;
    VDIT_ASSIGN(std::shared_ptr<const VmobaPartition> part, partition(call.grid, kind));
    const int64_t L = in.L;
    const int NH = in.NH, C = part->num_chunks();
    const VmobaGates gates = vmoba_gates(*part, in.q, in.k, L, NH, in.HD);
    VmobaSelection rule;
    rule.select = select_;
    rule.pool = pool_;
    rule.topk = topk_[kind];
    rule.threshold = threshold_;
    // Reference quirk fixed: when no query selects any other chunk, the reference falls back to FULL
    // attention; here the call stays local (self chunks only).
    const std::vector<uint8_t> sel = vmoba_select(*part, gates, rule);  // [C, NH, L]

    GatheredOrder order;
    order.block = kVmobaBlock;
    order.slots = part->perm;
    const int64_t B = kVmobaBlock, nb = order.num_blocks();
    const int32_t* chunk_of = part->chunk_of.data();
    const int64_t* cu = part->cu_chunk.data();
    auto selected = [&](int c, int h, int64_t n) { return sel[(static_cast<size_t>(c) * NH + h) * L + n] != 0; };
    auto list = [&](int h, int64_t qb, std::vector<GatheredKeyBlock>* blocks) {
      const int64_t q0 = qb * B, nq = std::min(B, L - q0);
      std::vector<int64_t> count(static_cast<size_t>(C), 0);  // queries of this block selecting chunk c
      for (int c = 0; c < C; ++c)
        for (int64_t n = q0; n < q0 + nq; ++n) count[c] += selected(c, h, n) ? 1 : 0;
      for (int64_t kb = 0; kb < nb; ++kb) {
        const int c0 = chunk_of[kb * B], c1 = chunk_of[std::min(L, (kb + 1) * B) - 1];
        bool any = false, all = true;
        for (int c = c0; c <= c1; ++c) {
          any = any || count[c] > 0;
          all = all && count[c] == nq;
        }
        if (any) blocks->push_back({static_cast<int32_t>(kb), !all});
      }
    };
    auto keep = [&](int h, int64_t i, int64_t j) { return selected(chunk_of[j], h, i); };
    gathered_attention_cpu(dst.out, dst.lse, in.q, in.k, in.v, L, NH, in.HD, in.scale(), order, list, keep);

    double kept = 0;
    for (int c = 0; c < C; ++c) {
      int64_t queries = 0;
      for (int h = 0; h < NH; ++h)
        for (int64_t n = 0; n < L; ++n) queries += selected(c, h, n) ? 1 : 0;
      kept += static_cast<double>(queries) * static_cast<double>(cu[c + 1] - cu[c]);
    }
    rec->density = kept / (static_cast<double>(NH) * static_cast<double>(L) * static_cast<double>(L));
    VDIT_TRY(record_extras(*part, gates, sel, NH, in.HD, L, rec));
    return Status::ok();
  }

  Status forward_sparse_device(const AttentionCall& call, const DeviceQKV& qkv, CallRecord* rec) override {
    if (call.text_len != 0) {
      return unsupported(strfmt("vmoba partitions video tokens only; this call has %lld text tokens in the "
                                "self-attention sequence", static_cast<long long>(call.text_len)));
    }
    if (select_ != VmobaSelect::topk || pool_ != VmobaPool::query_head) {
      return unsupported("vmoba on the GPU implements the inference rule (\"select\": \"topk\", \"pool\": "
                         "\"query_head\", the preset); the threshold rule and the head_global pool run with "
                         "--device cpu");
    }
    const int kind = call.layer % 3;
    VDIT_ASSIGN(std::shared_ptr<const VmobaPartition> part, partition(call.grid, kind));
    // The GPU kernel's block is the common "block" key (default 128: at equal block density the kernel runs
    // 128-blocks 1.3-1.45x faster than 64-blocks; 64 shrinks the union of a query block's chunks).
    VDIT_TRY(dev_.plan(qkv, part, schedule_.block, topk_[kind]));
    VDIT_TRY(block_sparse_gathered_cuda(qkv, dev_.view()));
    // The element density, as the CPU path reports it (reading it back synchronizes the stream).
    if (stats_on()) {
      VDIT_ASSIGN(rec->density, dev_.element_density(qkv.stream));
    }
    return Status::ok();
  }

 private:
  Status parse_chunks(const nlohmann::json& j) {
    auto bad = [&](const std::string& why) {
      return invalid_argument(strfmt("vmoba attention config: key \"chunks\" = %s: %s; expected {\"1d\": frames, "
                                     "\"2d\": [h, w], \"3d\": [f, h, w]} with positive sizes (any subset)",
                                     j.dump().c_str(), why.c_str()));
    };
    if (!j.is_object()) return bad("not an object");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      const nlohmann::json& v = it.value();
      std::vector<int64_t> dims;
      if (v.is_number_integer()) {
        dims.push_back(v.get<int64_t>());
      } else if (v.is_array()) {
        for (const auto& e : v) {
          if (!e.is_number_integer()) return bad("\"" + key + "\" holds a non-integer");
          dims.push_back(e.get<int64_t>());
        }
      }
      for (int64_t d : dims)
        if (d < 1) return bad("\"" + key + "\" has a size < 1");
      if (key == "1d" && dims.size() == 1) {
        box_[0] = {dims[0], int64_t{1} << 40, int64_t{1} << 40};  // c frames x the whole frame
      } else if (key == "2d" && dims.size() == 2) {
        box_[1] = {int64_t{1} << 40, dims[0], dims[1]};  // an h x w patch across all frames
      } else if (key == "3d" && dims.size() == 3) {
        box_[2] = {dims[0], dims[1], dims[2]};
      } else {
        return bad("unknown entry or wrong size for \"" + key + "\"");
      }
    }
    return Status::ok();
  }

  Result<std::shared_ptr<const VmobaPartition>> partition(const VideoGrid& grid, int kind) {
    const auto key = std::make_tuple(grid.f, grid.h, grid.w, kind);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    VDIT_ASSIGN(VmobaPartition p, vmoba_partition(grid, box_[kind]));
    auto shared = std::make_shared<const VmobaPartition>(std::move(p));
    cache_[key] = shared;
    return shared;
  }

  Status record_extras(const VmobaPartition& part, const VmobaGates& gates, const std::vector<uint8_t>& sel, int NH,
                       int HD, int64_t L, CallRecord* rec) const {
    const int C = part.num_chunks();
    VDIT_ASSIGN(Tensor s, Tensor::create(DType::u8, {C, NH, L}));  // [C, NH, L] rearranged queries
    std::copy(sel.begin(), sel.end(), s.data<uint8_t>());
    rec->extras["selected"] = s;
    VDIT_ASSIGN(Tensor perm, Tensor::create(DType::i32, {L}));  // [L]
    std::copy(part.perm.begin(), part.perm.end(), perm.data<int32_t>());
    rec->extras["perm"] = perm;
    VDIT_ASSIGN(Tensor cu, Tensor::create(DType::i32, {C + 1}));  // [C + 1]
    for (int c = 0; c <= C; ++c) cu.data<int32_t>()[c] = static_cast<int32_t>(part.cu_chunk[c]);
    rec->extras["cu_chunk"] = cu;
    if (!record_gates_) return Status::ok();
    VDIT_ASSIGN(Tensor kgw, Tensor::from_f32(gates.key_gate_weight, {C, NH, HD}));  // [C, NH, HD]
    rec->extras["key_gate_weight"] = kgw;
    VDIT_ASSIGN(Tensor g, Tensor::create(DType::f32, {C, NH, L}));  // [C, NH, L], the reference's layout
    for (int h = 0; h < NH; ++h)
      for (int c = 0; c < C; ++c)
        std::copy_n(gates.gate.data() + (static_cast<size_t>(h) * C + c) * L, L,
                    g.f32() + (static_cast<size_t>(c) * NH + h) * L);
    rec->extras["gate"] = g;
    return Status::ok();
  }

  // Chunk boxes (frames, rows, cols) per partition kind 0 = 1D, 1 = 2D, 2 = 3D; huge sizes mean "whole axis".
  std::array<std::array<int64_t, 3>, 3> box_ = {{{3, int64_t{1} << 40, int64_t{1} << 40},
                                                 {int64_t{1} << 40, 5, 13},
                                                 {7, 5, 13}}};
  VmobaSelect select_ = VmobaSelect::topk;
  std::array<int, 3> topk_ = {2, 6, 18};
  double threshold_ = 0.25;
  VmobaPool pool_ = VmobaPool::query_head;
  bool record_gates_ = false;
  std::mutex mutex_;
  std::map<std::tuple<int64_t, int64_t, int64_t, int>, std::shared_ptr<const VmobaPartition>> cache_;
  VmobaDevicePlanner dev_;  // GPU plans; keeps the partitions it uploaded
};

}  // namespace
}  // namespace vdit::attn

VDIT_REGISTER_ATTENTION_METHOD(vmoba, "VMoBA: 1D/2D/3D chunk partitions by layer, chunk-mean gating, top-k or "
                               "threshold selection", vdit::attn::VmobaMethod);
