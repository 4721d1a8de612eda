// Terminal feedback for long-running commands (`vdit generate`, `vdit decode`): one progress line on
// stderr, redrawn in place (stage, bar, step or frame count, rate, ETA) only when stderr is a terminal
// and not --quiet; Ctrl-C turns into a clean cancel (the output's temporary file is removed); and the
// end-of-run summary of time per stage. The library never prints; this is the CLI's side.
#pragma once

#include <chrono>
#include <string>

#include "dit/pipeline/progress.h"

namespace vdit::cli {

class ProgressBar {
 public:
  // `enabled`: draw at all (callers pass !quiet); drawing also needs stderr to be a terminal.
  explicit ProgressBar(bool enabled);
  ~ProgressBar();
  // Draws `event`; returns false once Ctrl-C was pressed (the pipeline then cancels).
  bool update(const pipeline::ProgressEvent& event);
  // Ends the progress line (call before printing anything else).
  void finish();

 private:
  bool draw_ = false;
  bool line_open_ = false;
  pipeline::Stage last_stage_ = pipeline::Stage::loading;
  std::chrono::steady_clock::time_point last_draw_{};
};

// While alive, library log lines end the progress line before they are printed ("vdit: warn: ...");
// afterwards plain printing to stderr is restored.
class ProgressLogScope {
 public:
  explicit ProgressLogScope(ProgressBar& bar);
  ~ProgressLogScope();
  ProgressLogScope(const ProgressLogScope&) = delete;
  ProgressLogScope& operator=(const ProgressLogScope&) = delete;
};

// From now on the first SIGINT (Ctrl-C) or SIGTERM sets a flag that ProgressBar::update reports, so the
// run ends cleanly (the sink removes its temporary file); a second one kills the process the default way.
void cancel_on_interrupt();
bool interrupted();

// "load 1.2 s | text encoder 0.3 s | denoising 41.0 s (attention 71 %, 3000 calls) | VAE 3.2 s |
//  encoding 0.4 s | total 46.1 s"; stages that did not run are left out.
std::string format_timings(const pipeline::StageTimings& t);

}  // namespace vdit::cli
