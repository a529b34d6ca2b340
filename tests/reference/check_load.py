#!/usr/bin/env python3
"""Checks that a checkpoint written by seemore loads into the PyTorch reference.

Usage: /usr/bin/python3 tests/reference/check_load.py CHECKPOINT.safetensors FILE_WITH_BATCH.safetensors

The checkpoint's tensors must load with load_state_dict(strict=True) into the
reference model built from the checkpoint's own config metadata; the second
file (written by `seemore_tests "[export]"`) holds a batch and the logits
seemore computed for it, which the reference must reproduce.
"""
import json
import struct
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from seemore_torch import VisionLanguageModel  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", e["dtype"]
        b, t = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:t]), dtype=torch.float32).reshape(e["shape"])
    return out, meta


def main():
    weights, meta = read_safetensors(sys.argv[1])
    batch, _ = read_safetensors(sys.argv[2])
    c = json.loads(meta["config"])
    model = VisionLanguageModel(c, c["preset"] == "seemore")
    model.load_state_dict(weights, strict=True)
    model.eval()
    idx = batch["input.tokens"].long()
    targets = torch.full((idx.shape[0], idx.shape[1] + 1), -100, dtype=torch.long)
    with torch.no_grad():
        logits, _ = model(batch["input.images"], idx, targets)
    err = (logits - batch["out.logits"]).abs().max().item() / batch["out.logits"].abs().max().item()
    print(f"loaded {len(weights)} tensors strictly; logits rel err vs seemore {err:.2e}")
    sys.exit(0 if err < 1e-5 else 1)


if __name__ == "__main__":
    main()
