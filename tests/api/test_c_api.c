/* The C API (dit/api/vdit.h) from plain C99, linked against the shared libvdit: generation with the built-in
 * model into memory and into a file, progress and cancellation, determinism for a fixed seed, the attention
 * methods alone against a naive reference, and the error paths (status codes and messages). Exit 0 = pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dit/api/vdit.h"

static int g_failures = 0;

#define CHECK(cond, ...)                                     \
  do {                                                       \
    if (!(cond)) {                                           \
      ++g_failures;                                          \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                          \
      fprintf(stderr, "\n");                                 \
    }                                                        \
  } while (0)

/* A small, quick request on the built-in model: 128x128, 5 frames, 2 steps. */
static vdit_generate_params small_request(const char* prompt) {
  vdit_generate_params p = vdit_generate_default_params();
  p.prompt = prompt;
  p.width = 128;
  p.height = 128;
  p.frames = 5;
  p.steps = 2;
  p.seed = 7;
  return p;
}

typedef struct {
  int calls, denoising_steps, cancel_at_step;
  vdit_stage last_stage;
} progress_log;

static int on_progress(vdit_stage stage, int done, int total, double seconds, void* user) {
  progress_log* log = (progress_log*)user;
  (void)seconds;
  ++log->calls;
  log->last_stage = stage;
  if (stage == VDIT_STAGE_DENOISING && total > 0) {
    log->denoising_steps = done;
    if (log->cancel_at_step > 0 && done >= log->cancel_at_step) return 0;
  }
  return 1;
}

static void test_basics(void) {
  CHECK(strlen(vdit_version()) > 0, "empty version");
  CHECK(strcmp(vdit_status_name(VDIT_OK), "ok") == 0, "%s", vdit_status_name(VDIT_OK));
  CHECK(strcmp(vdit_status_name(VDIT_CANCELLED), "cancelled") == 0, "%s", vdit_status_name(VDIT_CANCELLED));
  CHECK(strstr(vdit_attention_methods(), "radial") != NULL, "methods: %s", vdit_attention_methods());
}

/* Checks that need no tokenizer. */
static void test_argument_errors(void) {
  vdit_video v;
  vdit_generate_params p = small_request(NULL);
  CHECK(vdit_generate(&p, &v) == VDIT_INVALID_ARGUMENT, "no prompt");
  CHECK(strstr(vdit_last_error(), "prompt") != NULL, "message: %s", vdit_last_error());
  CHECK(v.rgb == NULL && v.frames == 0, "out not zeroed");
  CHECK(vdit_generate(NULL, &v) == VDIT_INVALID_ARGUMENT, "NULL params");
  CHECK(vdit_has_feature("no-such-feature") == 0, "unknown feature reported present");
}

/* A build without sentencepiece cannot tokenize prompts: it says so and what to install. */
static void test_without_tokenizer(void) {
  vdit_video v;
  vdit_generate_params p = small_request("a red circle moving right on a black background");
  CHECK(vdit_generate(&p, &v) == VDIT_UNSUPPORTED, "generate without sentencepiece: %s", vdit_last_error());
  CHECK(strstr(vdit_last_error(), "sentencepiece") != NULL, "message: %s", vdit_last_error());
}

static void test_generate_errors(void) {
  vdit_video v;
  vdit_generate_params p;

  p = small_request("a red circle moving right on a black background");
  p.attention = "no-such-method";
  CHECK(vdit_generate(&p, &v) == VDIT_INVALID_ARGUMENT, "unknown method");
  CHECK(strstr(vdit_last_error(), "radial") != NULL, "should list the methods: %s", vdit_last_error());

  p = small_request("a red circle moving right on a black background");
  p.model_dir = VDIT_TEST_TMP_DIR "/no-such-model";
  CHECK(vdit_generate(&p, &v) == VDIT_NOT_FOUND, "missing model: %s", vdit_last_error());

  p = small_request("a red circle moving right on a black background");
  p.frames = 6; /* not 4k+1 */
  CHECK(vdit_generate(&p, &v) == VDIT_INVALID_ARGUMENT, "frames 6: %s", vdit_last_error());
  CHECK(strstr(vdit_last_error(), "frames") != NULL, "message: %s", vdit_last_error());

  p = small_request("a red circle moving right on a black background");
  CHECK(vdit_generate_file(&p, VDIT_TEST_TMP_DIR "/clip.unknown-extension") != VDIT_OK, "bad extension");
  CHECK(strlen(vdit_last_error()) > 0, "no message for the bad extension");
}

static void test_generate_memory(void) {
  progress_log log = {0, 0, 0, VDIT_STAGE_LOADING};
  vdit_generate_params p = small_request("a red circle moving right on a white background");
  vdit_video a, b;
  p.width = p.height = p.frames = 0; /* the model's 256x256, 17 frames (the only size it was trained on) */
  p.steps = 4;
  p.progress = on_progress;
  p.user_data = &log;
  vdit_status st = vdit_generate(&p, &a);
  CHECK(st == VDIT_OK, "generate: %s", vdit_last_error());
  if (st != VDIT_OK) return;
  CHECK(a.rgb != NULL && a.frames == 17 && a.width == 256 && a.height == 256, "video %d x %dx%d", a.frames, a.width,
        a.height);
  CHECK(a.seed == 7, "seed %lld", (long long)a.seed);
  CHECK(a.fps > 0 && a.seconds_total > 0 && a.seconds_denoising > 0, "fps %g, times %g %g", a.fps, a.seconds_total,
        a.seconds_denoising);
  CHECK(a.attention_density == 1.0, "dense density %g", a.attention_density);
  CHECK(log.denoising_steps == 4 && log.calls > 6, "progress: %d steps in %d calls", log.denoising_steps, log.calls);
  /* The frames are not blank: a saturated red object on a white background. */
  {
    long n = (long)a.frames * a.width * a.height, i, red = 0, white = 0;
    for (i = 0; i < n; ++i) {
      const uint8_t* px = a.rgb + 3 * i;
      red += px[0] > 150 && px[1] < 90 && px[2] < 90;
      white += px[0] > 200 && px[1] > 200 && px[2] > 200;
    }
    CHECK(red > n / 200 && white > n / 2, "%ld red and %ld white pixels of %ld", red, white, n);
  }
  /* The same seed gives the same video. */
  p.progress = NULL;
  st = vdit_generate(&p, &b);
  CHECK(st == VDIT_OK, "second generate: %s", vdit_last_error());
  if (st == VDIT_OK) {
    CHECK(memcmp(a.rgb, b.rgb, (size_t)a.frames * a.width * a.height * 3) == 0, "same seed, different video");
    vdit_video_free(&b);
  }
  vdit_video_free(&a);
  CHECK(a.rgb == NULL, "free did not clear the struct");
}

static void on_log(vdit_log_level level, const char* message, void* user) {
  if (level == VDIT_LOG_DEBUG && strstr(message, "sampling step") != NULL) ++*(int*)user;
}

static void test_cancel_and_log(void) {
  progress_log log = {0, 0, 1, VDIT_STAGE_LOADING};
  vdit_generate_params p = small_request("a blue square moving up on a white background");
  vdit_video v;
  int step_logs = 0;
  p.progress = on_progress;
  p.user_data = &log;
  vdit_set_log_callback(on_log, &step_logs, VDIT_LOG_DEBUG);
  CHECK(vdit_generate(&p, &v) == VDIT_CANCELLED, "cancel: %s", vdit_last_error());
  vdit_set_log_callback(NULL, NULL, VDIT_LOG_WARN);
  CHECK(step_logs == 1, "%d 'sampling step' debug messages before the cancel (1 expected)", step_logs);
  CHECK(v.rgb == NULL, "cancelled run returned frames");
  CHECK(log.last_stage == VDIT_STAGE_DENOISING, "stopped in stage %d", (int)log.last_stage);
}

static void test_generate_file(void) {
  const char* path = VDIT_TEST_TMP_DIR "/c_api_image.png";
  struct stat sb;
  vdit_generate_params p = small_request("a green square moving left on a white background");
  vdit_status st;
  p.frames = 1; /* one frame: an image */
  remove(path);
  st = vdit_generate_file(&p, path);
  if (st == VDIT_UNSUPPORTED) { /* a build without an image writer says so */
    fprintf(stderr, "note: PNG output unsupported in this build: %s\n", vdit_last_error());
    return;
  }
  CHECK(st == VDIT_OK, "generate_file: %s", vdit_last_error());
  CHECK(stat(path, &sb) == 0 && sb.st_size > 100, "no image at %s", path);
}

/* Naive attention: out[i,h,:] = softmax(q[i,h,:]·k[j,h,:] / sqrt(HD)) v[j,h,:]. */
static void reference_attention(const float* q, const float* k, const float* v, int L, int NH, int HD, float* out) {
  int i, j, h, d;
  double* p = (double*)malloc(sizeof(double) * (size_t)L);
  for (h = 0; h < NH; ++h)
    for (i = 0; i < L; ++i) {
      double mx = -1e300, sum = 0;
      for (j = 0; j < L; ++j) {
        double s = 0;
        for (d = 0; d < HD; ++d) s += (double)q[((size_t)i * NH + h) * HD + d] * k[((size_t)j * NH + h) * HD + d];
        p[j] = s / sqrt((double)HD);
        if (p[j] > mx) mx = p[j];
      }
      for (j = 0; j < L; ++j) sum += (p[j] = exp(p[j] - mx));
      for (d = 0; d < HD; ++d) {
        double acc = 0;
        for (j = 0; j < L; ++j) acc += p[j] * v[((size_t)j * NH + h) * HD + d];
        out[((size_t)i * NH + h) * HD + d] = (float)(acc / sum);
      }
    }
  free(p);
}

static void fill(float* x, size_t n, unsigned seed) {
  size_t i;
  for (i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
}

static void test_attention(void) {
  enum { F = 2, H = 4, W = 8, NH = 2, HD = 16, L = F * H * W };
  vdit_attention_model model = {2, NH, HD, F, H, W, 10};
  vdit_attention_call call = {1, 5, 0, F, H, W, 0};
  size_t n = (size_t)L * NH * HD, i;
  float *q = malloc(n * sizeof(float)), *k = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float));
  float *out = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
  vdit_attention* a = NULL;
  double worst = 0;
  fill(q, n, 1), fill(k, n, 2), fill(v, n, 3);
  reference_attention(q, k, v, L, NH, HD, ref);

  CHECK(vdit_attention_new("dense", NULL, &model, &a) == VDIT_OK, "dense: %s", vdit_last_error());
  if (a) {
    CHECK(strcmp(vdit_attention_name(a), "dense") == 0, "name %s", vdit_attention_name(a));
    CHECK(vdit_attention_forward(a, &call, q, k, v, L, NH, HD, out) == VDIT_OK, "forward: %s", vdit_last_error());
    for (i = 0; i < n; ++i) worst = fmax(worst, fabs((double)out[i] - ref[i]));
    CHECK(worst < 1e-5, "dense vs reference: max |diff| %g", worst);
    call.layer = 2; /* the model has 2 layers */
    CHECK(vdit_attention_forward(a, &call, q, k, v, L, NH, HD, out) == VDIT_INVALID_ARGUMENT, "layer 2 accepted");
    call.layer = 1;
    CHECK(vdit_attention_forward(a, &call, q, k, v, L - 1, NH, HD, out) == VDIT_INVALID_ARGUMENT,
          "L not matching the grid accepted");
    vdit_attention_free(a);
    a = NULL;
  }

  /* A sparse method with an explicit config, at a step past its dense warm-up: runs and stays finite. */
  CHECK(vdit_attention_new("radial", "{\"dense_steps\": 0, \"dense_layers\": 0}", &model, &a) == VDIT_OK,
        "radial: %s", vdit_last_error());
  if (a) {
    int finite = 1;
    CHECK(vdit_attention_forward(a, &call, q, k, v, L, NH, HD, out) == VDIT_OK, "radial forward: %s",
          vdit_last_error());
    for (i = 0; i < n; ++i) finite &= isfinite(out[i]) != 0;
    CHECK(finite, "radial output not finite");
    vdit_attention_free(a);
    a = NULL;
  }

  CHECK(vdit_attention_new("no-such-method", NULL, &model, &a) == VDIT_INVALID_ARGUMENT && a == NULL, "unknown");
  CHECK(strstr(vdit_last_error(), "dense") != NULL, "should list the methods: %s", vdit_last_error());
  CHECK(vdit_attention_new("dense", "{not json", &model, &a) == VDIT_INVALID_ARGUMENT, "bad JSON accepted");
  CHECK(vdit_attention_new("radial", "{\"no_such_key\": 1}", &model, &a) == VDIT_INVALID_ARGUMENT,
        "unknown key accepted");
  CHECK(vdit_attention_new("dense", NULL, NULL, &a) == VDIT_INVALID_ARGUMENT, "NULL model accepted");
  vdit_attention_free(NULL);
  free(q), free(k), free(v), free(out), free(ref);
}

int main(void) {
  test_basics();
  test_attention();
  test_argument_errors();
  if (!vdit_has_feature("sentencepiece")) {
    fprintf(stderr, "note: built without sentencepiece: generation is checked only for its error\n");
    test_without_tokenizer();
  } else {
    test_generate_errors();
    test_generate_memory();
    test_cancel_and_log();
    test_generate_file();
  }
  if (g_failures) {
    fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  printf("test_c_api: all checks passed\n");
  return 0;
}
