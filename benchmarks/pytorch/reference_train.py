#!/usr/bin/env python3
"""Trains the PyTorch reference "seemore" the way the reference notebook does,
for side-by-side comparisons with seemore-train (loss curves, step times).

Data as the reference: the CSV's rows duplicated --repeat times, the first
90% train (batches drawn without replacement), the rest validate (drawn with
replacement); every batch decodes and resizes its images again with PIL
(Resize((96, 96)) bilinear, ToTensor, Normalize). Adam, lr 1e-3.

Usage: /usr/bin/python3 benchmarks/pytorch/reference_train.py --data inputs.csv --json out.json
"""
import argparse
import base64
import csv
import io
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "reference"))
from seemore_torch import VisionLanguageModel  # noqa: E402

CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
STOI = {c: i for i, c in enumerate(CHARS)}
PAD = len(CHARS)
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def process_image(b64, size):
    img = Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB").resize((size, size), Image.BILINEAR)
    x = np.asarray(img, np.float32) / 255.0
    x = (x - MEAN) / STD
    return torch.from_numpy(x.transpose(2, 0, 1).copy()).unsqueeze(0)


def get_batch(rows, n, replace, size, gen):
    idx = torch.randint(0, len(rows), (n,), generator=gen) if replace else torch.randperm(len(rows), generator=gen)[:n]
    batch = [rows[int(i)] for i in idx]
    images = torch.cat([process_image(r["b64string_images"], size) for r in batch], dim=0)
    texts = [torch.tensor([STOI[c] for c in r["caption"]], dtype=torch.long) for r in batch]
    L = max(len(t) for t in texts)
    tokens = torch.full((n, L), PAD, dtype=torch.long)
    for i, t in enumerate(texts):
        tokens[i, : len(t)] = t
    targets = torch.cat([tokens[:, 1:], torch.full((n, 1), PAD, dtype=torch.long)], dim=1)
    full = torch.cat([torch.full((n, 1), -100, dtype=torch.long), targets], dim=1)
    return images, tokens, full


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--val-batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--eval-interval", type=int, default=10)
    ap.add_argument("--eval-iters", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    csv.field_size_limit(1 << 30)
    rows = list(csv.DictReader(open(a.data, newline=""))) * a.repeat
    n = int(0.9 * len(rows))
    train, val = rows[:n], rows[n:]
    c = dict(img_size=96, patch_size=16, image_embed_dim=512, num_blks=3, n_embd=128, n_layer=8, n_head=8,
             vocab_size=66, block_size=1000, dropout=0.1)
    model = VisionLanguageModel(c, True)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    gen = torch.Generator().manual_seed(a.seed)
    losses, data_s, compute_s = {}, [], []
    model.train()
    for step in range(a.steps):
        t0 = time.perf_counter()
        images, idx, targets = get_batch(train, a.batch_size, False, 96, gen)
        t1 = time.perf_counter()
        opt.zero_grad()
        _, loss = model(images, idx, targets)
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        data_s.append(t1 - t0)
        compute_s.append(t2 - t1)
        losses[step] = loss.item()
        if step % a.eval_interval == 0:
            print(f"step {step}: loss {loss.item():.4f}  (data {t1 - t0:.3f}s, compute {t2 - t1:.3f}s)", flush=True)
    model.eval()
    with torch.no_grad():
        vl = [model(*get_batch(val, a.val_batch_size, True, 96, gen))[1].item() for _ in range(a.eval_iters)]
    val_loss = sum(vl) / len(vl)
    print(f"val_loss {val_loss:.4f}; median step: data {np.median(data_s):.3f}s compute {np.median(compute_s):.3f}s")
    if a.json:
        json.dump({"losses": losses, "val_loss": val_loss, "median_data_s": float(np.median(data_s)),
                   "median_compute_s": float(np.median(compute_s)), "threads": a.threads, "torch": torch.__version__},
                  open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
