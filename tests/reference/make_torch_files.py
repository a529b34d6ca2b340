#!/usr/bin/env python3
"""Writes the torch.save fixtures of the C++ loader tests (io/torch_file.hpp)
from reference_tiny_seemore.safetensors (the reference model's initial weights):

  reference_tiny_seemore.pt   torch.save(model.state_dict()): the reference
                              model with those weights, as PyTorch users save it
  training_checkpoint.pt      a training checkpoint dict: the state dict in
                              float16 under "model", one weight stored
                              transposed (non-contiguous), one bias at a storage
                              offset, and other values of every plain kind
  ../fuzz/corpus/torch/*.pt   the torch.save fuzzer's seeds, which are also the
                              loader test's files of every layout torch.save
                              writes (legacy, whole module, protocols 1 to 4)

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/make_torch_files.py
"""
import json
import os
import struct
import sys
from collections import OrderedDict

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from seemore_torch import VisionLanguageModel  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = OrderedDict()
    for name, v in header.items():
        if name == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(v["shape"]).clone()
    return out


def main():
    weights = read_safetensors(os.path.join(HERE, "reference_tiny_seemore.safetensors"))
    c = dict(preset="seemore", img_size=32, patch_size=8, in_channels=3, image_embed_dim=32, num_blks=2, n_embd=16,
             n_layer=2, n_head=2, vocab_size=66, block_size=32, dropout=0.0, pad_id=65, eos_id=-1)
    model = VisionLanguageModel(c, True)
    model.load_state_dict(weights, strict=True)
    torch.save(model.state_dict(), os.path.join(HERE, "reference_tiny_seemore.pt"))

    half = OrderedDict((k, v.half()) for k, v in model.state_dict().items())
    w = half["decoder.lm_head.weight"]
    half["decoder.lm_head.weight"] = w.t().contiguous().t()  # same values, column-major storage
    b = half["decoder.lm_head.bias"]
    half["decoder.lm_head.bias"] = torch.cat([torch.zeros(5, dtype=b.dtype), b])[5:]  # storage offset 5
    assert not half["decoder.lm_head.weight"].is_contiguous()
    ckpt = {"model": half, "step": 7, "lr": 1e-3, "history": [4.25, None, True, -3, 2 ** 40], "name": "tiny",
            "blob": b"\x00\x01", "nested": {"t": (1, 2.5)}, "extra": torch.arange(4, dtype=torch.int64)}
    torch.save(ckpt, os.path.join(HERE, "training_checkpoint.pt"))

    # Seeds of the torch.save fuzzer (tests/fuzz/corpus/torch/): a model of the
    # fuzzers' small config (tests/fuzz/small_config.hpp), whole and as a
    # float16 training checkpoint with a strided weight.
    small = dict(c, img_size=8, patch_size=4, image_embed_dim=4, num_blks=1, n_embd=4, n_layer=1, n_head=1,
                 block_size=4)
    torch.manual_seed(0)
    m = VisionLanguageModel(small, True)
    seeds = os.path.join(HERE, "..", "fuzz", "corpus", "torch")
    os.makedirs(seeds, exist_ok=True)
    torch.save(m.state_dict(), os.path.join(seeds, "small_state_dict.pt"))
    sd = OrderedDict((k, v.half()) for k, v in m.state_dict().items())
    sd["decoder.lm_head.weight"] = sd["decoder.lm_head.weight"].t().contiguous().t()
    torch.save({"state_dict": sd, "epoch": 1, "loss": [2.5, None]}, os.path.join(seeds, "small_checkpoint.pt"))
    # The same model in every other layout torch.save writes (the loader test
    # expects each to give small_state_dict.pt's tensors, in its order): the
    # legacy format (protocol 2, and 4 with its frames), protocol 1 (bools as
    # text), a checkpoint holding the whole module under "model", then the
    # module alone (ZIP, and legacy, where classes are persistent ids) with a
    # buffer the state dict keeps and one it drops.
    kw = dict(_use_new_zipfile_serialization=False)
    torch.save(m.state_dict(), os.path.join(seeds, "small_legacy.pt"), **kw)
    torch.save(m.state_dict(), os.path.join(seeds, "small_legacy_p4.pt"), pickle_protocol=4, **kw)
    torch.save(m.state_dict(), os.path.join(seeds, "small_p1.pt"), pickle_protocol=1)
    torch.save({"model": m, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "params": {0, 1}}]}},
               os.path.join(seeds, "small_module_checkpoint.pt"), pickle_protocol=4)
    m.register_buffer("kept", torch.full((2,), 0.5))
    m.register_buffer("dropped", torch.ones(3), persistent=False)
    torch.save(m, os.path.join(seeds, "small_module.pt"))
    torch.save(m, os.path.join(seeds, "small_module_legacy.pt"), **kw)
    print("torch", torch.__version__, "- wrote reference_tiny_seemore.pt, training_checkpoint.pt")


if __name__ == "__main__":
    main()
