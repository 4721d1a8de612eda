/* libvdit's C API: text-to-video generation with any Wan2.1-layout model (the built-in one by default) and the
 * attention methods alone, for apps written in C, C++ or any language with a C FFI (Python ctypes, ...).
 * Plain C99; every function returns a vdit_status or a value that cannot fail; the message of the last failure
 * on the calling thread is vdit_last_error(). Nothing is printed: progress and logs reach the caller through
 * callbacks. Calls on different objects may run on different threads; one object is used by one thread at a
 * time.
 *
 *   vdit_generate_params p = vdit_generate_default_params();
 *   p.prompt = "a red circle moving right on a black background";
 *   vdit_video video;
 *   if (vdit_generate(&p, &video) != VDIT_OK) fprintf(stderr, "%s\n", vdit_last_error());
 *   ... video.rgb holds video.frames x video.height x video.width x 3 bytes ...
 *   vdit_video_free(&video);
 */
#ifndef VDIT_H
#define VDIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VDIT_API_VERSION 1 /* bumped when a struct or signature here changes */

typedef enum vdit_status {
  VDIT_OK = 0,
  VDIT_INVALID_ARGUMENT = 1, /* a value out of range or inconsistent; the message names it */
  VDIT_NOT_FOUND = 2,        /* a file, tensor or key is missing */
  VDIT_IO_ERROR = 3,         /* reading or writing failed */
  VDIT_FORMAT_ERROR = 4,     /* a file exists but its content is malformed */
  VDIT_UNSUPPORTED = 5,      /* valid, but this build or device cannot do it */
  VDIT_OUT_OF_MEMORY = 6,    /* host or GPU allocation failed; the message suggests what to reduce */
  VDIT_DEVICE_ERROR = 7,     /* CUDA / cuBLAS / cuDNN reported an error */
  VDIT_CANCELLED = 8,        /* the progress callback returned 0 */
  VDIT_INTERNAL = 9          /* a bug in vdit */
} vdit_status;

/* "0.1.0" */
const char* vdit_version(void);
/* "ok", "invalid argument", ... */
const char* vdit_status_name(vdit_status status);
/* The message of the calling thread's last failed call ("" if none). Valid until the thread's next call. */
const char* vdit_last_error(void);
/* 1 if this build has the optional part `name`, else 0: "cuda", "cudnn", "ffmpeg" (video files), "opencv"
 * (images), "onnx", "sentencepiece" (prompts; without it only precomputed embeddings work), "blas". */
int vdit_has_feature(const char* name);

/* ---- logs ---- */
typedef enum vdit_log_level { VDIT_LOG_DEBUG = 0, VDIT_LOG_INFO = 1, VDIT_LOG_WARN = 2, VDIT_LOG_ERROR = 3 } vdit_log_level;
typedef void (*vdit_log_callback)(vdit_log_level level, const char* message, void* user_data);
/* Process-wide. NULL restores the default (warnings and errors to stderr). Messages below `min_level` are
 * dropped. The callback may be called from any thread that runs vdit code. */
void vdit_set_log_callback(vdit_log_callback callback, void* user_data, vdit_log_level min_level);

/* ---- generation ---- */
typedef enum vdit_stage {
  VDIT_STAGE_LOADING = 0,
  VDIT_STAGE_TEXT_ENCODER = 1,
  VDIT_STAGE_DENOISING = 2,
  VDIT_STAGE_VAE_DECODE = 3,
  VDIT_STAGE_FINISHING = 4
} vdit_stage;

/* Called at the start of every stage and after every denoising step / decoded frame (done of total; 0 of 0
 * at a stage's start). Return 0 to cancel: the call then fails with VDIT_CANCELLED and writes no output. */
typedef int (*vdit_progress_callback)(vdit_stage stage, int done, int total, double stage_seconds, void* user_data);

typedef struct vdit_generate_params {
  const char* model_dir;       /* model folder (official, diffusers or built-in layout); NULL: the built-in model */
  const char* prompt;          /* required */
  const char* negative_prompt; /* NULL: the model's default */
  int64_t seed;                /* < 0: random (reported in vdit_video.seed) */
  int width, height, frames;   /* 0: the model's default; frames 4k+1, sides multiples of 16 */
  int steps;                   /* 0: the model's default */
  double guidance;             /* 0: the model's default; 1 = no classifier-free guidance */
  double shift;                /* 0: the model's default */
  double fps;                  /* 0: the model's default */
  const char* sampler;         /* "unipc", "dpm++", "euler"; NULL: the model's default */
  const char* attention;       /* self-attention method (vdit_attention_methods()); NULL: "dense" */
  const char* attention_config; /* JSON object text or a JSON file; NULL: the method's preset */
  const char* device;          /* DiT and VAE: "cpu" or "cuda"; NULL: "cpu" */
  const char* text_encoder_device; /* "cpu" or "cuda"; NULL: "cpu" */
  const char* save_latents_path;   /* also write the sampled latents here (safetensors); NULL: no */
  vdit_progress_callback progress; /* NULL: none */
  void* user_data;                 /* passed to `progress` */
} vdit_generate_params;

/* Every field zero / NULL except seed = -1: the built-in model with its defaults, dense attention, CPU. */
vdit_generate_params vdit_generate_default_params(void);

typedef struct vdit_video {
  uint8_t* rgb;              /* frames x height x width x 3 bytes, RGB, row-major; freed by vdit_video_free */
  int frames, width, height;
  double fps;
  int64_t seed;              /* the seed used */
  double seconds_total;      /* whole call */
  double seconds_denoising;  /* the sampling loop */
  double attention_share;    /* self-attention's share of the sampling loop */
  double attention_density;  /* mean kept fraction over self-attention calls (1 = dense) */
} vdit_video;

/* Generates into memory. On failure `out` is zeroed. */
vdit_status vdit_generate(const vdit_generate_params* params, vdit_video* out);
/* Generates into a file: .mp4/.mkv (H.264), .webm (VP9), .png/.jpg (one frame) or a folder ending in '/'
 * (numbered PNGs), as the vdit command. The file appears only when complete; if decoding fails after
 * denoising, the latents are kept next to it (<name>.latents.safetensors) for `vdit decode`. */
vdit_status vdit_generate_file(const vdit_generate_params* params, const char* path);
void vdit_video_free(vdit_video* video);

/* ---- attention methods alone ---- */
/* "dense, draft, paro, radial, rettention, vmoba" */
const char* vdit_attention_methods(void);

typedef struct vdit_attention vdit_attention;

/* The model a method is set up for (its presets depend on it). */
typedef struct vdit_attention_model {
  int num_layers, num_heads, head_dim;
  int64_t grid_f, grid_h, grid_w; /* latent token grid; 0: unknown */
  int num_steps;                  /* denoising steps; 0: unknown */
} vdit_attention_model;

/* One self-attention call's place in the generation (methods keep state across layers and steps). */
typedef struct vdit_attention_call {
  int layer, step, branch;        /* branch 0 = conditional, 1 = unconditional */
  int64_t grid_f, grid_h, grid_w; /* video tokens first, frame-major: L = f*h*w + text_len */
  int64_t text_len;               /* text tokens after the video (0 for Wan) */
} vdit_attention_call;

/* `config_json`: NULL (the preset) or a JSON object overriding preset keys. */
vdit_status vdit_attention_new(const char* method, const char* config_json, const vdit_attention_model* model,
                               vdit_attention** out);
/* out[L,NH,HD] = attention(q, k, v) with scale 1/sqrt(HD); q, k, v, out are f32 [L, NH, HD] contiguous on the
 * host. A sparse method computes what it keeps; dense steps/layers of its schedule run exact attention. */
vdit_status vdit_attention_forward(vdit_attention* attention, const vdit_attention_call* call, const float* q,
                                   const float* k, const float* v, int64_t L, int NH, int HD, float* out);
/* "radial" ... */
const char* vdit_attention_name(const vdit_attention* attention);
void vdit_attention_free(vdit_attention* attention);

#ifdef __cplusplus
}
#endif

#endif /* VDIT_H */
