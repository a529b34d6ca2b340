#!/usr/bin/env python3
"""Writes the golden files for the C++ parity tests (tests/nn/test_parity.cpp).

The model below is the PyTorch reference "seemore" written from
docs/model.md and the reference description: per-head attention modules, the
reference's quirks (width scaling, FFN residual on the normalised x, pad
targets counted) and, with --preset standard, the same model with the quirks
fixed. For a tiny config it writes one safetensors file holding the weights
(under the reference's state_dict names), one batch, the logits, the loss,
every parameter's gradient, and the losses of 5 Adam steps.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/make_golden.py
--image-tokens patches [--patch-pool K] uses the patch-prefix model of
patches_torch.py instead (golden_patches_*.safetensors).
"""
import argparse
import json
import struct

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from patches_torch import PatchVisionLanguageModel  # noqa: E402
from seemore_torch import VisionLanguageModel  # noqa: E402


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata} if metadata else {}
    blobs, at = [], 0
    for name, t in tensors.items():
        b = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=["seemore", "standard"], default="seemore")
    ap.add_argument("--out", required=True)
    ap.add_argument("--bare", help="also write the initial weights alone, as a plain PyTorch checkpoint")
    ap.add_argument("--image-tokens", choices=["cls", "patches"], default="cls")
    ap.add_argument("--patch-pool", type=int, default=1)
    a = ap.parse_args()
    quirks = a.preset == "seemore"
    c = dict(preset=a.preset, img_size=32, patch_size=8, in_channels=3, image_embed_dim=32, num_blks=2, n_embd=16,
             n_layer=2, n_head=2, vocab_size=66 if quirks else 67, block_size=32, dropout=0.0, pad_id=65,
             eos_id=-1 if quirks else 66)
    if a.image_tokens == "patches":
        c.update(image_tokens="patches", patch_pool=a.patch_pool)
    torch.manual_seed(0)
    model = PatchVisionLanguageModel(c, quirks, a.patch_pool) if a.image_tokens == "patches" else \
        VisionLanguageModel(c, quirks)
    # Non-trivial LayerNorm parameters, so that their gradients are tested with weights != 1.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln" in name or "layer_norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    B, T, pad = 3, 9, 65
    images = torch.randn(B, 3, 32, 32)
    lengths = [9, 6, 4]
    idx = torch.full((B, T), pad, dtype=torch.long)
    for b, n in enumerate(lengths):
        idx[b, :n] = torch.randint(0, 65, (n,))
    if quirks:  # reference: the text shifted left with <pad> appended; pads count
        targets = torch.cat([idx[:, 1:], torch.full((B, 1), pad, dtype=torch.long)], dim=1)
        full = torch.cat([torch.full((B, 1), -100, dtype=torch.long), targets], dim=1)
    else:  # standard: position 0 (the image) predicts the first character, <eos> ends, pads ignored
        full = torch.full((B, T + 1), -100, dtype=torch.long)
        for b, n in enumerate(lengths):
            full[b, :n] = idx[b, :n]
            full[b, n] = c["eos_id"]
        targets = full
    out = {}
    for k, v in model.state_dict().items():
        out[k] = v.clone()
    if a.bare:  # exactly what a PyTorch user saves: the state_dict, no metadata
        write_safetensors(a.bare, {k: v.clone() for k, v in model.state_dict().items()}, None)
    out["input.images"] = images
    out["input.tokens"] = idx.float()
    out["input.targets"] = targets.float()
    logits, loss = model(images, idx, full)
    loss.backward()
    out["out.logits"] = logits
    out["out.loss"] = loss.reshape(1)
    for k, p in model.named_parameters():
        out["grad." + k] = p.grad.clone()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        _, l = model(images, idx, full)
        losses.append(l.item())
        l.backward()
        opt.step()
    out["adam.losses"] = torch.tensor(losses)
    write_safetensors(a.out, out, {"config": json.dumps(c), "torch": torch.__version__})
    print(f"{a.out}: loss {loss.item():.6f}, adam losses {losses}")


if __name__ == "__main__":
    main()
