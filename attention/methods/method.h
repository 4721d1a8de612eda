// The base every attention method derives from, the common schedule, the method registry and the factory.
// Contract for a method author (one new file attention/methods/<id>.cpp, no edits elsewhere):
//  * derive from AttentionMethod, override configure_method() to read YOUR keys from the ConfigReader
//    (common keys are already consumed; keys nobody reads are rejected after you return), and either
//    plan() (return a BlockLayout; the base runs the block-sparse kernel) or forward_sparse() (full control);
//  * end the file, at any namespace scope, with a line that STARTS with the macro:
//      VDIT_REGISTER_ATTENTION_METHOD(<id>, "one-line description", MyMethodClass);
//    attention/CMakeLists.txt scans attention/methods/*.cpp for such lines at configure time and generates
//    the table that links the methods in (static registrars alone would be dropped from static libraries).
//  * The base decides dense vs sparse per call (Schedule, plus is_dense()), times calls, emits statistics,
//    computes quality statistics on request and records the last call's layout and extras for the CLI.
// Methods keep state per (layer, branch) across steps; reset() clears it between samples.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/block_layout.h"
#include "attention/config_reader.h"
#include "attention/cuda/block_sparse_cuda.h"
#include "attention/stats.h"
#include "dit/core/tensor.h"

namespace vdit::attn {

class CudnnSdpa;

// What a method may know about the model when it is created (presets are chosen from it).
struct ModelInfo {
  int num_layers = 1;
  int num_heads = 1;
  int head_dim = 128;
  std::string family = "wan";  // "wan" | "hunyuan" (radial's sink rule, presets)
  VideoGrid grid;              // latent grid if known (f = 0: unknown); picks 480p/720p presets
  int num_steps = 0;           // denoising steps if known (0: unknown)
};

// One attention call's inputs, all [L, NH, HD] f32 contiguous in the original token order.
struct QKV {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t L = 0;
  int NH = 0;
  int HD = 0;
  float scale() const;  // 1/sqrt(HD)
};

// Where a call writes: out [L, NH, HD]; lse [NH, L] (natural log of the attention actually computed before
// any epilogue; for dense calls the dense LSE) or null.
struct AttentionDst {
  float* out = nullptr;
  float* lse = nullptr;
};

// Common schedule keys (see attention/README.md): dense warm-up steps and dense layers.
struct Schedule {
  int dense_steps = 0;               // steps [0, dense_steps) run dense
  double dense_step_fraction = 0.0;  // also dense while step < ceil(fraction · num_steps)
  int dense_layers = 0;              // layers [0, dense_layers) run dense
  std::vector<int> dense_layer_list; // further layers that always run dense
  int block = 128;                   // block size of the method's layouts (64 | 128)

  bool is_dense(const AttentionCall& call) const;
  // Reads dense_steps, dense_step_fraction, dense_layers (int = first N, or a list of layer ids), block.
  Status parse(ConfigReader& cfg);
};

// What the last call did (kept only while recording is on; for `vdit forward attention` and tests).
struct CallRecord {
  bool dense = true;
  double density = 1.0;
  std::shared_ptr<const BlockLayout> layout;  // null for dense calls
  std::map<std::string, Tensor> extras;       // method tensors, e.g. "rho" [NH, L]
};

class AttentionMethod : public SelfAttention {
 public:
  AttentionMethod() = default;
  ~AttentionMethod() override = default;

  // SelfAttention: run() without LSE.
  Status forward(const AttentionCall& call, const float* q, const float* k, const float* v, int64_t L, int NH,
                 int HD, float* out) final;
  const char* name() const override { return name_.c_str(); }

  // One call with optional LSE. Checks L against the call's grid and text, then dense or sparse.
  Status run(const AttentionCall& call, const QKV& in, const AttentionDst& dst);

  // The same call on device memory (see attention.h). Checks L against the call's grid and text; dense calls
  // (the same schedule as run()) go to cuDNN's SDPA, sparse calls to forward_sparse_device(). CPU state and
  // GPU state are separate: a method object serves one device. With a stats sink the call synchronizes its
  // stream before and after (to time it); without one it only enqueues work.
  Status forward_device(const AttentionCall& call, const DeviceQKV& qkv) override;

  // Applies `config` (an object of common + method keys; "method" is accepted if it equals the name).
  // Called once by make_attention().
  Status configure(const nlohmann::json& config, const ModelInfo& model);
  // Preset keys (common + method) for `model` (methods.md section 7), applied before the user's config;
  // an empty object when there is none. Called before configure(), so use `model`, not model().
  virtual nlohmann::json preset(const ModelInfo& /*model*/) const { return nlohmann::json::object(); }
  const Schedule& schedule() const { return schedule_; }
  const ModelInfo& model() const { return model_; }
  // The configuration as applied (common + method keys), for logs and output metadata.
  virtual nlohmann::json describe() const;

  // The layout the method would use for `call`, without running attention; nullptr when the call runs
  // dense. Methods whose layout depends only on shapes (static_layout()) accept null q/k/v pointers.
  Result<std::shared_ptr<const BlockLayout>> plan_only(const AttentionCall& call, const QKV& in);
  virtual bool static_layout() const { return false; }

  void set_stats_sink(StatsSink sink) { sink_ = std::move(sink); }
  // Quality statistics (recall, relative error) cost one dense and one layout pass per sparse call.
  void set_quality_stats(bool on) { quality_ = on; }
  void set_record(bool on) { record_on_ = on; }
  const CallRecord& last_call() const { return record_; }

  // Forgets all cross-step state (call between samples). Override to clear caches; call the base.
  virtual void reset() {}

  // Frees the GPU layouts cached by cached_device_layout() (they are rebuilt on demand).
  void drop_device_layouts() { device_layouts_.clear(); }

  // Used by the registry.
  void set_name(std::string name) { name_ = std::move(name); }

 protected:
  // Reads the method's own keys. Unread keys are rejected by configure() afterwards.
  virtual Status configure_method(ConfigReader& cfg) = 0;
  // Method keys as applied (merged into describe()).
  virtual nlohmann::json describe_method() const { return nlohmann::json::object(); }
  // Whether this call runs plain dense attention. Default: the common schedule.
  virtual bool is_dense(const AttentionCall& call) const { return schedule_.is_dense(call); }
  // Called after a dense call wrote dst (for methods that learn from dense steps).
  virtual Status after_dense(const AttentionCall&, const QKV&, const AttentionDst&) { return Status::ok(); }
  // The layout for a sparse call. Default: unsupported (override plan() or forward_sparse()).
  virtual Result<std::shared_ptr<const BlockLayout>> plan(const AttentionCall& call, const QKV& in);
  // A sparse call. Default: plan(), then block_sparse_attention_cpu. Must fill rec->layout when a layout
  // was used (density and quality statistics are taken from it), rec->dense/density otherwise.
  virtual Status forward_sparse(const AttentionCall& call, const QKV& in, const AttentionDst& dst,
                                CallRecord* rec);

  // ---- GPU path (forward_device) ----
  // A sparse call on the GPU; set rec->density (listed blocks / all blocks) when it is known cheaply.
  // Default: cached_device_layout(), then the block-sparse CUDA kernel (methods whose layout is planned on
  // the host once per key). Methods with data-dependent layouts override this.
  virtual Status forward_sparse_device(const AttentionCall& call, const DeviceQKV& qkv, CallRecord* rec);
  // The key under which a call's host-planned layout (plan()) is uploaded once and reused, e.g. the shape
  // for Radial or (step group, layer) for PARO; empty = the method has no host-planned GPU path.
  virtual std::string device_layout_key(const AttentionCall& /*call*/, const DeviceQKV& /*qkv*/) const { return {}; }
  // The host layout the GPU path uploads for `call` (null q/k/v). Default: plan(). A method may give the
  // kernel a different but equivalent layout (same kept elements, e.g. under a permutation).
  virtual Result<std::shared_ptr<const BlockLayout>> plan_for_device(const AttentionCall& call, const QKV& in) {
    return plan(call, in);
  }
  // The uploaded layout for `call`: plan_for_device() once per key, then the cached device copy.
  Result<const DeviceBlockLayout*> cached_device_layout(const AttentionCall& call, const DeviceQKV& qkv);
  // Dense attention of a device call through cuDNN's SDPA (the handle is created on first use).
  Status dense_device(const DeviceQKV& qkv);
  // Whether a stats sink is installed (GPU planners then read their density back, which synchronizes).
  bool stats_on() const { return static_cast<bool>(sink_); }

  Schedule schedule_;
  ModelInfo model_;

 private:
  std::shared_ptr<CudnnSdpa> sdpa_;  // created on the first dense GPU call
  std::map<std::string, std::shared_ptr<DeviceBlockLayout>> device_layouts_;
  Status quality_pass(const QKV& in, const float* out, const CallRecord& rec, AttentionStats* st) const;
  // The statistics of one call (both the CPU and the GPU path report them the same way).
  AttentionStats call_stats(const AttentionCall& call, int64_t L, int NH, const CallRecord& rec, double seconds) const;
  std::string name_ = "unnamed";
  StatsSink sink_;
  bool quality_ = false;
  bool record_on_ = false;
  CallRecord record_;
};

// ---- registry ------------------------------------------------------------------------------------

using MethodFactory = std::function<std::unique_ptr<AttentionMethod>()>;

struct MethodInfo {
  std::string name;
  std::string description;
  MethodFactory create;
};

class MethodRegistry {
 public:
  void add(std::string name, std::string description, MethodFactory create);
  const MethodInfo* find(const std::string& name) const;
  const std::vector<MethodInfo>& methods() const { return methods_; }

 private:
  std::vector<MethodInfo> methods_;
};

// Every method linked into this build (from the generated table), sorted by name.
const MethodRegistry& method_registry();
// "dense, radial, rettention, ..."
std::string method_names();

// Creates method `method`, configured with its preset for `model` (AttentionMethod::preset) overridden key
// by key by `config` (an object; null = preset only; {"preset": "none"} skips the preset).
// Errors: unknown method (lists the known ones), config not an object, unknown keys, values out of range.
Result<std::unique_ptr<AttentionMethod>> make_attention(const std::string& method, const nlohmann::json& config,
                                                        const ModelInfo& model);

}  // namespace vdit::attn

// Registers `Class` (default-constructible, derived from vdit::attn::AttentionMethod) as method `id`.
// Write it at the start of a line in attention/methods/<file>.cpp; see the contract at the top.
#define VDIT_REGISTER_ATTENTION_METHOD(id, description, Class)                                        \
  extern "C" void vdit_register_attention_method_##id(void* registry) {                              \
    static_cast<::vdit::attn::MethodRegistry*>(registry)->add(                                        \
        #id, description, [] { return std::unique_ptr<::vdit::attn::AttentionMethod>(new Class()); }); \
  }                                                                                                   \
  static_assert(true, "")
