// C interface of libvdit_spm.so, the loadable module that wraps libsentencepiece. Why a module: Debian's
// libsentencepiece carries its own protobuf runtime (3.14) and exports it; in a process that also loads the
// system libprotobuf (the ONNX reader links it, a Python host may too), sentencepiece's calls bind to the
// other runtime and abort at the first model load. The module is opened with RTLD_DEEPBIND so sentencepiece
// binds to its own copy; nothing else in the process may link libsentencepiece directly.
// Errors are returned as text in `err` (NUL-terminated, truncated to err_size). No function throws.
#pragma once

#include <stddef.h>
#include <stdint.h>

#define VDIT_SPM_MODULE_ABI 1

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vdit_spm vdit_spm;

// VDIT_SPM_MODULE_ABI of the module (the loader refuses a different one).
typedef int (*vdit_spm_abi_fn)(void);
// Loads a model file; NULL on failure.
typedef vdit_spm* (*vdit_spm_open_fn)(const char* path, char* err, size_t err_size);
typedef void (*vdit_spm_close_fn)(vdit_spm* model);
// Encodes `len` bytes of UTF-8 into *ids (malloc'd; release with vdit_spm_free) and *count. 0 or -1 (error).
typedef int (*vdit_spm_encode_fn)(const vdit_spm* model, const char* text, size_t len, int32_t** ids, int64_t* count,
                                  char* err, size_t err_size);
typedef void (*vdit_spm_free_fn)(void* p);
typedef int64_t (*vdit_spm_piece_size_fn)(const vdit_spm* model);
// The id of a piece, or -1 when the model has none spelled so.
typedef int32_t (*vdit_spm_piece_to_id_fn)(const vdit_spm* model, const char* piece, size_t len);
// Copies the spelling of piece `id` into buf (NUL-terminated, truncated); returns its full length, -1 if out of range.
typedef int64_t (*vdit_spm_id_to_piece_fn)(const vdit_spm* model, int32_t id, char* buf, size_t buf_size);
// ids[0..3] = pad, eos, unk, bos as the model's trainer spec sets them (-1 = none).
typedef void (*vdit_spm_special_ids_fn)(const vdit_spm* model, int32_t ids[4]);

#ifdef __cplusplus
}
#endif
