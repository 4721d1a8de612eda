// bench_vae: times the CPU VAE decoder with seeded random weights for a given base dim (the rest of the
// released config), reports the time per layer kind and the peak resident memory of the decode itself.
// Correctness is covered by test_vae (kernels vs references, goldens); this only times.
//
//   bench_vae --dim 96 --latent 16x9x32x32 [--tile 0] [--threads 2] [--reps 1]
//   bench_vae [--threads N] [--reps N] --conv COxCIxHxW   (one 3x3x3 conv, full history; options first)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <malloc.h>
#include <fstream>
#include <map>
#include <string>

#include "dit/core/parallel.h"
#include "tests/vae/vae_test_util.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// VmHWM / VmRSS of this process in MiB (Linux); -1 elsewhere.
double proc_status_mib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atof(line.c_str() + std::strlen(key)) / 1024.0;
  }
  return -1;
}

// Bytes currently allocated through malloc (heap + mmapped chunks), in MiB: the live set, without the
// allocator's fragmentation or BLAS work buffers that VmHWM also counts.
double malloc_live_mib() {
  const struct mallinfo2 m = mallinfo2();
  return static_cast<double>(m.uordblks + m.hblkhd) / 1048576.0;
}

// Resets VmHWM to the current RSS (Linux >= 4.0), so the next reading is the decode's own peak.
void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}

double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

int bench_conv(const vdit::Shape& s, int reps) {
  using namespace vdit;
  const int64_t co = s[0], ci = s[1], H = s[2], W = s[3];
  std::mt19937 rng(3);
  std::normal_distribution<float> n01;
  auto rnd = [&](Shape sh) {
    Tensor t = Tensor::create(DType::f32, std::move(sh)).value();
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = n01(rng);
    return t;
  };
  auto w = vae::make_conv_weights(rnd({co, ci, 3, 3, 3}), rnd({co}), "bench").value();
  Tensor a = rnd({ci, H, W}), b = rnd({ci, H, W}), c = rnd({ci, H, W});
  Tensor out = Tensor::create(DType::f32, {co, H, W}).value();
  const float* frames[3] = {a.f32(), b.f32(), c.f32()};
  const double flop = 2.0 * co * ci * 27 * H * W;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    Status st = vae::conv_frame(out.f32(), w, frames, H, W, 0);
    const double wall = seconds_since(t0), cpu = cpu_seconds() - c0;
    if (!st.is_ok()) return 1;
    std::printf("conv %lldx%lld 3x3x3 at %lldx%lld: %.1f ms wall (%.1f GFLOP/s), %.1f ms CPU (%.1f GFLOP/s per CPU-s)\n",
                (long long)co, (long long)ci, (long long)H, (long long)W, wall * 1e3, flop / wall * 1e-9, cpu * 1e3,
                flop / cpu * 1e-9);
  }
  return 0;
}

int usage() {
  std::fprintf(stderr, "usage: bench_vae [--dim N] [--latent ZxFxHxW] [--tile N] [--threads N] [--reps N]\n"
                       "       bench_vae [--threads N] [--reps N] --conv COxCIxHxW\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vdit;
  int64_t dim = 96, tile = 0;
  int threads = 0, reps = 1;
  Shape latent = {16, 9, 32, 32};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    std::string v = argv[++i];
    if (a == "--dim") dim = std::atoll(v.c_str());
    else if (a == "--tile") tile = std::atoll(v.c_str());
    else if (a == "--threads") threads = std::atoi(v.c_str());
    else if (a == "--reps") reps = std::atoi(v.c_str());
    else if (a == "--conv") {
      Shape cs;
      for (char* p = v.data(); *p;) {
        cs.push_back(std::strtoll(p, &p, 10));
        if (*p == 'x') ++p;
        else if (*p) return usage();
      }
      if (cs.size() != 4) return usage();
      set_num_threads(threads);
      return bench_conv(cs, reps);
    } else if (a == "--latent") {
      latent.clear();
      for (char* p = v.data(); *p;) {
        latent.push_back(std::strtoll(p, &p, 10));
        if (*p == 'x') ++p;
        else if (*p) return usage();
      }
      if (latent.size() != 4) return usage();
    } else {
      return usage();
    }
  }
  set_num_threads(threads);

  vae::VaeConfig cfg;
  cfg.dim = dim;
  cfg.z_dim = latent[0];
  cfg.latents_mean.assign(static_cast<size_t>(cfg.z_dim), 0.f);
  cfg.latents_std.assign(static_cast<size_t>(cfg.z_dim), 1.f);
  auto t0 = Clock::now();
  Result<vae::VaeDecoder> dec = internal_error("not loaded");
  {
    auto file = vae_test::random_vae_file(cfg, 1);
    std::string zeros = "[", ones = "[";
    for (int64_t c = 0; c < cfg.z_dim; ++c) {
      zeros += c ? ", 0" : "0";
      ones += c ? ", 1" : "1";
    }
    file->set_metadata("latents_mean", zeros + "]");  // random weights: identity normalization
    file->set_metadata("latents_std", ones + "]");
    dec = vae::VaeDecoder::load(*file);
  }
  if (!dec) {
    std::fprintf(stderr, "bench_vae: %s\n", dec.status().to_string().c_str());
    return 1;
  }
  const std::vector<vae::LayerSpec> specs = vae::decoder_layers(dec->config()).value();
  int64_t params = 0;
  for (const auto& l : specs) {
    for (const auto& t : l.tensors) params += shape_numel(t.shape);
  }
  const double load_s = seconds_since(t0);
  const double weights_rss = proc_status_mib("VmRSS:");

  Tensor z = Tensor::create(DType::f32, latent).value();
  std::mt19937 rng(2);
  std::normal_distribution<float> n01;
  for (int64_t i = 0; i < z.numel(); ++i) z.f32()[i] = n01(rng);

  std::printf("vae dim=%lld (%lld decoder params) latent %s -> %lld frames of %lldx%lld, tile=%lld, threads=%d\n",
              static_cast<long long>(dim), static_cast<long long>(params), shape_str(latent).c_str(),
              static_cast<long long>(dec->output_frames(latent[1])), static_cast<long long>(latent[2] * 8),
              static_cast<long long>(latent[3] * 8), static_cast<long long>(tile), num_threads());
  std::printf("  load %.2f s, RSS after load %.0f MiB\n", load_s, weights_rss);
  for (int r = 0; r < reps; ++r) {
    std::map<std::string, double> by_kind;  // time attributed to the layer that just emitted a frame
    std::map<std::string, std::string> kind_of;
    std::map<std::string, const vae::LayerSpec*> spec_of;
    for (const auto& l : specs) {
      kind_of[l.name] = vae::layer_kind_name(l.kind);
      spec_of[l.name] = &l;
    }
    double flop = 0;  // multiply-adds x 2 of the convs, linears and attention, from the emitted frames
    reset_peak_rss();
    const double live_base = malloc_live_mib();
    auto last = Clock::now();
    auto start = last;
    const double cpu0 = cpu_seconds();
    vae::VaeDecodeOptions o;
    o.tile = tile;
    double live_peak = 0;
    if (tile == 0) {
      o.on_stage = [&](const std::string& stage, int64_t frame, const Tensor& y) {
        live_peak = std::max(live_peak, malloc_live_mib());
        const vae::LayerSpec& l = *spec_of[stage];
        const double px = static_cast<double>(y.dim(1) * y.dim(2)), ci = l.in_channels, co = l.out_channels;
        switch (l.kind) {
          case vae::LayerKind::conv_1x1: flop += 2 * px * ci * co; break;
          case vae::LayerKind::causal_conv: flop += 2 * px * ci * co * 27; break;
          case vae::LayerKind::residual: flop += 2 * px * (ci * co * 27 + co * co * 27 + (ci != co ? ci * co : 0)); break;
          case vae::LayerKind::attention: flop += 2 * px * 4 * ci * ci + 4 * px * px * ci; break;
          case vae::LayerKind::upsample2d: flop += 2 * px * ci * co * 9; break;
          case vae::LayerKind::upsample3d:  // spatial conv per frame; time conv once per frame pair
            flop += 2 * px * ci * co * 9 + (frame > 0 && frame % 2 == 1 ? 2 * px / 4 * ci * 2 * ci * 3 : 0);
            break;
          case vae::LayerKind::head: flop += 2 * px * ci * co * 27; break;
        }
        auto now = Clock::now();
        by_kind[kind_of[stage]] += std::chrono::duration<double>(now - last).count();
        last = now;
      };
    }
    int64_t frames = 0;
    Status s = dec->decode(z, [&](int64_t, const Tensor&) {
      ++frames;
      last = Clock::now();
      return Status::ok();
    }, o);
    const double total = seconds_since(start), cpu = cpu_seconds() - cpu0;
    if (!s.is_ok()) {
      std::fprintf(stderr, "bench_vae: %s\n", s.to_string().c_str());
      return 1;
    }
    std::printf("  decode %.2f s wall (%.3f s per output frame), %.2f s CPU; during decode: peak RSS %.0f MiB", total,
                total / static_cast<double>(frames), cpu, proc_status_mib("VmHWM:"));
    if (tile == 0) {
      std::printf(", peak live malloc %.0f MiB (sampled per layer output; weights+input %.0f MiB)", live_peak,
                  live_base);
    }
    std::printf("\n");
    if (flop > 0) {
      std::printf("  %.1f GFLOP: %.1f GFLOP/s wall, %.1f GFLOP per CPU-second\n", flop * 1e-9, flop * 1e-9 / total,
                  flop * 1e-9 / cpu);
    }
    if (!by_kind.empty()) {
      std::printf("   ");
      for (const auto& [k, t] : by_kind) std::printf(" %s %.2fs", k.c_str(), t);
      std::printf("\n");
    }
  }
  return 0;
}
