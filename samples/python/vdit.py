"""Python binding of libvdit's C API (dit/api/vdit.h) through ctypes: no compiled extension, no dependencies.

    import vdit
    video = vdit.generate("a red circle moving right on a black background", seed=1)
    print(video.frames, video.width, video.height)          # video.rgb: bytes, frames x height x width x 3
    vdit.generate_file("clip.mp4", "a blue square moving up on a white background", attention="radial")

The library is found through $VDIT_LIBRARY, then the build trees next to this file (build/*/tools/libvdit.so),
then the system's library path. Errors raise vdit.VditError (.status, .status_name, message from
vdit_last_error). The attention methods alone: vdit.Attention("radial", model={...}).forward(call, q, k, v, ...).
"""
import ctypes
import ctypes.util
import glob
import os
from array import array

API_VERSION = 1  # VDIT_API_VERSION of the header this file mirrors

_PROGRESS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_double, ctypes.c_void_p)


class _GenerateParams(ctypes.Structure):
    _fields_ = [("model_dir", ctypes.c_char_p), ("prompt", ctypes.c_char_p), ("negative_prompt", ctypes.c_char_p),
                ("seed", ctypes.c_int64), ("width", ctypes.c_int), ("height", ctypes.c_int),
                ("frames", ctypes.c_int), ("steps", ctypes.c_int), ("guidance", ctypes.c_double),
                ("shift", ctypes.c_double), ("fps", ctypes.c_double), ("sampler", ctypes.c_char_p),
                ("attention", ctypes.c_char_p), ("attention_config", ctypes.c_char_p), ("device", ctypes.c_char_p),
                ("text_encoder_device", ctypes.c_char_p), ("save_latents_path", ctypes.c_char_p),
                ("progress", _PROGRESS), ("user_data", ctypes.c_void_p)]


class _Video(ctypes.Structure):
    _fields_ = [("rgb", ctypes.POINTER(ctypes.c_uint8)), ("frames", ctypes.c_int), ("width", ctypes.c_int),
                ("height", ctypes.c_int), ("fps", ctypes.c_double), ("seed", ctypes.c_int64),
                ("seconds_total", ctypes.c_double), ("seconds_denoising", ctypes.c_double),
                ("attention_share", ctypes.c_double), ("attention_density", ctypes.c_double)]


class _AttentionModel(ctypes.Structure):
    _fields_ = [("num_layers", ctypes.c_int), ("num_heads", ctypes.c_int), ("head_dim", ctypes.c_int),
                ("grid_f", ctypes.c_int64), ("grid_h", ctypes.c_int64), ("grid_w", ctypes.c_int64),
                ("num_steps", ctypes.c_int)]


class _AttentionCall(ctypes.Structure):
    _fields_ = [("layer", ctypes.c_int), ("step", ctypes.c_int), ("branch", ctypes.c_int),
                ("grid_f", ctypes.c_int64), ("grid_h", ctypes.c_int64), ("grid_w", ctypes.c_int64),
                ("text_len", ctypes.c_int64)]


STAGES = ("loading", "text encoder", "denoising", "VAE decode", "finishing")


def _find_library():
    given = os.environ.get("VDIT_LIBRARY")
    if given:
        if not os.path.exists(given):
            raise OSError(f"VDIT_LIBRARY={given}: no such file; point it at libvdit.so or unset it")
        return given
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = sorted(glob.glob(os.path.join(here, "..", "..", "build", "*", "tools", "libvdit.so")))
    candidates.append(ctypes.util.find_library("vdit") or "")  # a bare name: the loader's search path
    for c in candidates:
        if c:
            return c
    raise OSError("libvdit.so not found: build vdit (tools/build.sh) or set VDIT_LIBRARY to the library's path")


def _load():
    lib = ctypes.CDLL(_find_library())
    lib.vdit_version.restype = ctypes.c_char_p
    lib.vdit_status_name.restype = ctypes.c_char_p
    lib.vdit_status_name.argtypes = [ctypes.c_int]
    lib.vdit_last_error.restype = ctypes.c_char_p
    lib.vdit_has_feature.argtypes = [ctypes.c_char_p]
    lib.vdit_generate_default_params.restype = _GenerateParams
    lib.vdit_generate.argtypes = [ctypes.POINTER(_GenerateParams), ctypes.POINTER(_Video)]
    lib.vdit_generate_file.argtypes = [ctypes.POINTER(_GenerateParams), ctypes.c_char_p]
    lib.vdit_video_free.argtypes = [ctypes.POINTER(_Video)]
    lib.vdit_attention_methods.restype = ctypes.c_char_p
    lib.vdit_attention_new.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_AttentionModel),
                                       ctypes.POINTER(ctypes.c_void_p)]
    fp = ctypes.POINTER(ctypes.c_float)
    lib.vdit_attention_forward.argtypes = [ctypes.c_void_p, ctypes.POINTER(_AttentionCall), fp, fp, fp,
                                           ctypes.c_int64, ctypes.c_int, ctypes.c_int, fp]
    lib.vdit_attention_name.restype = ctypes.c_char_p
    lib.vdit_attention_name.argtypes = [ctypes.c_void_p]
    lib.vdit_attention_free.argtypes = [ctypes.c_void_p]
    return lib


_lib = _load()


class VditError(RuntimeError):
    """A failed libvdit call: .status (vdit_status code), .status_name, and the library's message."""

    def __init__(self, status):
        self.status = status
        self.status_name = _lib.vdit_status_name(status).decode()
        super().__init__(f"{self.status_name}: {_lib.vdit_last_error().decode()}")


def _check(status):
    if status != 0:
        raise VditError(status)


def _b(s):
    return None if s is None else str(s).encode()


def version():
    return _lib.vdit_version().decode()


def has_feature(name):
    return bool(_lib.vdit_has_feature(_b(name)))


def attention_methods():
    return [m.strip() for m in _lib.vdit_attention_methods().decode().split(",")]


class Video:
    """rgb: bytes, frames x height x width x 3 (RGB, row-major)."""

    def __init__(self, v):
        n = v.frames * v.width * v.height * 3
        self.rgb = ctypes.string_at(v.rgb, n) if n else b""
        self.frames, self.width, self.height, self.fps, self.seed = v.frames, v.width, v.height, v.fps, v.seed
        self.seconds_total, self.seconds_denoising = v.seconds_total, v.seconds_denoising
        self.attention_share, self.attention_density = v.attention_share, v.attention_density


def _params(prompt, model_dir=None, negative_prompt=None, seed=-1, width=0, height=0, frames=0, steps=0, guidance=0.0,
            shift=0.0, fps=0.0, sampler=None, attention=None, attention_config=None, device=None,
            text_encoder_device=None, save_latents_path=None, progress=None):
    p = _lib.vdit_generate_default_params()
    p.model_dir, p.prompt, p.negative_prompt = _b(model_dir), _b(prompt), _b(negative_prompt)
    p.seed, p.width, p.height, p.frames, p.steps = seed, width, height, frames, steps
    p.guidance, p.shift, p.fps = guidance, shift, fps
    p.sampler, p.attention, p.attention_config = _b(sampler), _b(attention), _b(attention_config)
    p.device, p.text_encoder_device, p.save_latents_path = _b(device), _b(text_encoder_device), _b(save_latents_path)
    callback = None
    if progress is not None:  # progress(stage_name, done, total, seconds) -> False cancels
        def trampoline(stage, done, total, seconds, _user):
            try:
                return 0 if progress(STAGES[stage], done, total, seconds) is False else 1
            except Exception:  # noqa: BLE001 (an exception must not cross into C: cancel instead)
                return 0
        callback = _PROGRESS(trampoline)
        p.progress = callback
    return p, callback  # the caller keeps `callback` alive during the call


def generate(prompt, **options):
    """Generates into memory; options as vdit_generate_params (0 / None = the model's default)."""
    p, keep = _params(prompt, **options)
    v = _Video()
    _check(_lib.vdit_generate(ctypes.byref(p), ctypes.byref(v)))
    try:
        return Video(v)
    finally:
        _lib.vdit_video_free(ctypes.byref(v))
        del keep


def generate_file(path, prompt, **options):
    """Generates into a file (.mp4/.mkv/.webm/.png/.jpg or a folder ending in '/'), as `vdit generate`."""
    p, keep = _params(prompt, **options)
    _check(_lib.vdit_generate_file(ctypes.byref(p), _b(path)))
    del keep


class Attention:
    """One attention method on host f32 q/k/v [L, NH, HD] (any buffer of float32: array('f'), numpy, ...)."""

    def __init__(self, method, model, config=None):
        m = _AttentionModel(model.get("num_layers", 1), model.get("num_heads", 1), model.get("head_dim", 64),
                            *model.get("grid", (0, 0, 0)), model.get("num_steps", 0))
        self._h = ctypes.c_void_p()
        _check(_lib.vdit_attention_new(_b(method), _b(config), ctypes.byref(m), ctypes.byref(self._h)))

    @property
    def name(self):
        return _lib.vdit_attention_name(self._h).decode()

    def forward(self, q, k, v, L, NH, HD, layer=0, step=0, branch=0, grid=(0, 0, 0), text_len=0):
        """Returns out [L, NH, HD] as array('f')."""
        n = L * NH * HD
        out = array("f", bytes(4 * n))
        ptr = ctypes.POINTER(ctypes.c_float)

        def as_ptr(x):
            buf = (ctypes.c_float * n).from_buffer_copy(memoryview(x).cast("B")[:4 * n]) if n else None
            return ctypes.cast(buf, ptr), buf

        (qp, qb), (kp, kb), (vp, vb) = as_ptr(q), as_ptr(k), as_ptr(v)
        op = (ctypes.c_float * n).from_buffer(out)
        call = _AttentionCall(layer, step, branch, *grid, text_len)
        _check(_lib.vdit_attention_forward(self._h, ctypes.byref(call), qp, kp, vp, L, NH, HD,
                                           ctypes.cast(op, ptr)))
        del qb, kb, vb, op
        return out

    def close(self):
        if self._h:
            _lib.vdit_attention_free(self._h)
            self._h = ctypes.c_void_p()

    def __del__(self):
        self.close()
