// `vdit forward t5 --weights W --inputs IN.safetensors --out OUT.safetensors`: one UMT5 encoder forward on
// token ids from a file (parity with PyTorch). IN holds `ids` [L] (or [1, L]; any integer dtype) and
// optionally `mask` [L] (any integer or bool dtype; nonzero = valid); `in.ids` / `in.mask` (the golden
// files' names) are accepted too. OUT gets `out` [L, dim] f32, every position, as the official full output.
// `--device cuda` runs the GPU encoder (t5_encoder_cuda.h) in `--precision bf16` (default) or f32.
#include <chrono>
#include <cstdint>
#include <cstring>

#include "dit/core/log.h"
#include "dit/text/t5_encoder.h"
#include "dit/text/t5_encoder_cuda.h"
#include "io/safetensors_writer.h"
#include "io/tensor_file.h"
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

struct ForwardT5Options {
  std::string weights, inputs, out;
  bool low_memory = false;
  std::string device = "cpu";
  std::string precision = "bf16";  // GPU only
};

// Integer values of a tensor of any integer/bool dtype, shape [L] or [1, L].
Result<std::vector<int64_t>> read_int_vector(const TensorFile& in, const TensorEntry& e) {
  const bool row = e.shape.size() == 1 || (e.shape.size() == 2 && e.shape[0] == 1);
  if (!row) {
    return invalid_argument(in.path() + ": \"" + e.name + "\" must have shape [L] or [1, L], got " +
                            shape_str(e.shape));
  }
  const size_t n = static_cast<size_t>(shape_numel(e.shape));
  std::vector<int64_t> v(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = e.data + i * dtype_size(e.dtype);
    switch (e.dtype) {
      case DType::i64: {
        int64_t x;
        std::memcpy(&x, p, 8);
        v[i] = x;
        break;
      }
      case DType::i32: {
        int32_t x;
        std::memcpy(&x, p, 4);
        v[i] = x;
        break;
      }
      case DType::i16: {
        int16_t x;
        std::memcpy(&x, p, 2);
        v[i] = x;
        break;
      }
      case DType::i8:
        v[i] = static_cast<int8_t>(*p);
        break;
      case DType::u8:
      case DType::boolean:
        v[i] = *p;
        break;
      default:
        return invalid_argument(in.path() + ": \"" + e.name + "\" must be an integer tensor, got " +
                                dtype_name(e.dtype));
    }
  }
  return v;
}

const TensorEntry* find_either(const TensorFile& in, const char* a, const char* b) {
  const TensorEntry* e = in.find(a);
  return e ? e : in.find(b);
}

int run_forward_t5(const ForwardT5Options& o) {
  using namespace std::chrono;
  auto in = open_tensor_file(o.inputs);
  if (!in) return report_error(in.status().message());
  const TensorEntry* ids_entry = find_either(**in, "ids", "in.ids");
  if (!ids_entry) return report_error(o.inputs + ": no tensor \"ids\" (token ids [L], any integer dtype)");
  auto ids64 = read_int_vector(**in, *ids_entry);
  if (!ids64) return report_error(ids64.status().message());
  std::vector<int32_t> ids(ids64->size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t v = (*ids64)[i];
    if (v < INT32_MIN || v > INT32_MAX) {
      return report_error(strfmt("%s: ids[%zu] = %lld is not a token id (outside int32)", o.inputs.c_str(), i,
                                 static_cast<long long>(v)));
    }
    ids[i] = static_cast<int32_t>(v);  // the encoder checks the vocabulary range
  }
  std::vector<uint8_t> mask;
  if (const TensorEntry* m = find_either(**in, "mask", "in.mask")) {
    auto m64 = read_int_vector(**in, *m);
    if (!m64) return report_error(m64.status().message());
    mask.resize(m64->size());
    for (size_t i = 0; i < mask.size(); ++i) mask[i] = (*m64)[i] != 0;
  }

  const auto t0 = steady_clock::now();
  Tensor out;
  std::string summary, layout, device = o.device;
  if (o.device == "cuda") {
    auto precision = text::parse_t5_precision(o.precision);
    if (!precision) return report_error("--precision: " + precision.status().message());
    text::T5CudaOptions co;
    co.precision = *precision;
    auto enc = text::T5EncoderCuda::load(o.weights, co);
    if (!enc) return report_error(enc.status().message());
    const auto t1 = steady_clock::now();
    auto r = (*enc)->encode(ids, mask);
    if (!r) return report_error(o.inputs + ": " + r.status().message());
    const auto t2 = steady_clock::now();
    out = *r;
    summary = (*enc)->config().summary();
    layout = "n/a";
    device = std::string("cuda ") + text::t5_precision_name(co.precision);
    VDIT_LOG_INFO("forward t5 (cuda, %s): %s; L = %zu, load + upload %.2f s, encode %.2f ms", o.precision.c_str(),
                  summary.c_str(), ids.size(), duration<double>(t1 - t0).count(),
                  1e3 * duration<double>(t2 - t1).count());
  } else {
    text::T5LoadOptions load;
    load.weights_f32 = !o.low_memory;
    auto enc = text::T5Encoder::load(o.weights, load);
    if (!enc) return report_error(enc.status().message());
    const auto t1 = steady_clock::now();
    auto r = enc->encode(ids, mask);
    if (!r) return report_error(o.inputs + ": " + r.status().message());
    const auto t2 = steady_clock::now();
    out = *r;
    summary = enc->config().summary();
    layout = enc->weights().layout;
    VDIT_LOG_INFO("forward t5: %s; L = %zu, load %.2f s, encode %.2f s", summary.c_str(), ids.size(),
                  duration<double>(t1 - t0).count(), duration<double>(t2 - t1).count());
  }
  Status st = save_safetensors(o.out, {{"out", out}},
                               {{"weights", o.weights}, {"layout", layout}, {"config", summary}, {"device", device}});
  if (!st.is_ok()) return report_error(st.message());
  return 0;
}

std::function<int()> setup_forward_t5(CLI::App& app) {
  auto o = std::make_shared<ForwardT5Options>();
  app.add_option("--weights", o->weights,
                 "T5 encoder weights: models_t5_umt5-xxl-enc-bf16.pth, a .safetensors (official or HF UMT5 names), a "
                 ".safetensors.index.json, or a folder (diffusers root or text_encoder/)")
      ->required();
  app.add_option("--inputs", o->inputs, "safetensors with ids [L] (any int dtype) and optional mask [L]")->required();
  app.add_option("--out", o->out, "safetensors to write with out [L, dim] f32")->required();
  app.add_flag("--low-memory", o->low_memory,
               "keep bf16/f16 weights in the file and convert them layer by layer (less memory, slower)");
  app.add_option("--device", o->device, "where to run the encoder: cpu (f32) or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--precision", o->precision,
                 "GPU only: bf16 (bf16 GEMMs, fp32 residual and softmax; default) or f32 (matches the CPU)")
      ->check(CLI::IsMember({"bf16", "f32"}));
  return [o] { return run_forward_t5(*o); };
}

}  // namespace

VDIT_REGISTER_COMMAND("forward t5", "One UMT5 text-encoder forward on token ids from a file", 41, setup_forward_t5);

}  // namespace vdit::cli
