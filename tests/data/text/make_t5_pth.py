#!/usr/bin/python3
# Writes t5_tiny_bf16.pth: the tiny golden T5 weights (t5_tiny_weights.safetensors) cast to bf16 and saved
# with torch.save as an OrderedDict state_dict, the way Wan ships models_t5_umt5-xxl-enc-bf16.pth.
# Needs torch (any 1.x/2.x with the zip format); reads the safetensors file without the safetensors package.
import collections
import json
import os
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))

with open(os.path.join(HERE, "t5_tiny_weights.safetensors"), "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
state = collections.OrderedDict()
for name, info in header.items():
    if name == "__metadata__":
        continue
    assert info["dtype"] == "F32"
    b, e = info["data_offsets"]
    arr = np.frombuffer(data[b:e], dtype="<f4").reshape(info["shape"])
    state[name] = torch.from_numpy(arr.copy()).to(torch.bfloat16)
torch.save(state, os.path.join(HERE, "t5_tiny_bf16.pth"))
