// The CLI's progress line, Ctrl-C handling and timing summary.
#include "tools/vdit/progress_bar.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>

#include "dit/core/log.h"
#include "dit/core/status.h"

namespace vdit::cli {
namespace {

std::atomic<bool> g_interrupted{false};

void on_interrupt(int sig) {
  g_interrupted.store(true);
  std::signal(sig, SIG_DFL);  // a second Ctrl-C (or TERM) kills at once
}

std::string clock_text(double seconds) {
  if (!(seconds >= 0) || seconds > 359999) return "--:--";
  int s = static_cast<int>(seconds + 0.5);
  return s >= 3600 ? strfmt("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : strfmt("%d:%02d", s / 60, s % 60);
}

std::string seconds_text(double s) { return s < 10 ? strfmt("%.2f s", s) : strfmt("%.1f s", s); }

}  // namespace

ProgressLogScope::ProgressLogScope(ProgressBar& bar) {
  set_log_sink([&bar](LogLevel level, const std::string& msg) {
    bar.finish();
    std::fprintf(stderr, "vdit: %s: %s\n", log_level_name(level), msg.c_str());
  });
}

ProgressLogScope::~ProgressLogScope() {
  set_log_sink([](LogLevel level, const std::string& msg) {
    std::fprintf(stderr, "vdit: %s: %s\n", log_level_name(level), msg.c_str());
  });
}

void cancel_on_interrupt() {
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
}
bool interrupted() { return g_interrupted.load(); }

ProgressBar::ProgressBar(bool enabled) : draw_(enabled && ::isatty(STDERR_FILENO)) {}

ProgressBar::~ProgressBar() { finish(); }

bool ProgressBar::update(const pipeline::ProgressEvent& e) {
  if (!draw_) return !interrupted();
  const auto now = std::chrono::steady_clock::now();
  const bool stage_changed = e.stage != last_stage_;
  const bool last = e.total > 0 && e.done == e.total;
  // At most ~12 redraws a second, but never skip a stage change or the final count.
  if (!stage_changed && !last && now - last_draw_ < std::chrono::milliseconds(80)) return !interrupted();
  last_draw_ = now;
  last_stage_ = e.stage;
  std::string line = strfmt("%-12s", pipeline::stage_name(e.stage));
  if (e.total > 0) {
    constexpr int kWidth = 28;
    int filled = static_cast<int>(static_cast<double>(kWidth) * e.done / e.total);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    const bool steps = e.stage == pipeline::Stage::denoising;
    double rate = e.stage_s > 0 ? e.done / e.stage_s : 0;
    double eta = rate > 0 ? (e.total - e.done) / rate : -1;
    // Slow steps read better as s/it than as a small it/s.
    std::string speed = rate <= 0   ? "--"
                        : rate >= 1 ? strfmt("%.2f %s/s", rate, steps ? "it" : "frame")
                                    : strfmt("%.2f s/%s", 1 / rate, steps ? "it" : "frame");
    line += strfmt(" [%s] %s %d/%d  %s  ETA %s", bar.c_str(), steps ? "step" : "frame", e.done, e.total, speed.c_str(),
                   e.done == e.total ? "0:00" : clock_text(eta).c_str());
  } else {
    line += " ...";
  }
  std::fprintf(stderr, "\r%s\033[K", line.c_str());
  std::fflush(stderr);
  line_open_ = true;
  return !interrupted();
}

void ProgressBar::finish() {
  if (line_open_) {
    std::fprintf(stderr, "\n");
    line_open_ = false;
  }
}

std::string format_timings(const pipeline::StageTimings& t) {
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : " | ") + part; };
  if (t.load_s > 0) add("load " + seconds_text(t.load_s));
  if (t.text_encoder_s > 0) add("text encoder " + seconds_text(t.text_encoder_s));
  if (t.denoising_s > 0) {
    add(strfmt("denoising %s (attention %.0f %%, %lld calls)", seconds_text(t.denoising_s).c_str(),
               100 * t.attention_share(), static_cast<long long>(t.attention_calls)));
  }
  if (t.vae_s > 0) add("VAE " + seconds_text(t.vae_s));
  add("encoding " + seconds_text(t.encoding_s));
  add("total " + seconds_text(t.total_s));
  return out;
}

}  // namespace vdit::cli
