#!/usr/bin/env python3
"""Our fused attention against PyTorch's scaled_dot_product_attention, fp32,
on the same GPU: forward and forward+backward at the shapes of
seemore-microbench-cuda's attention cases, causal.

    attention_sdpa.py --micro OUT/microbench.jsonl [--json OUT.json]

Reads our times from the microbenchmark's JSON lines (its CUDA-event medians)
and times SDPA the same way (CUDA events, median of 50 after 10 warm-ups,
the math and memory-efficient kernels PyTorch picks for fp32). The target:
forward+backward at T = 1024, head size 64 within 2x of SDPA.
"""
import argparse
import json
import re
import statistics

import torch

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--micro", required=True)
ap.add_argument("--json")
args = ap.parse_args()

ours = {}
for line in open(args.micro):
    r = json.loads(line)
    m = re.match(r"attention .* B(\d+) T(\d+) H(\d+) D(\d+)( causal)? (fwd\+bwd|fwd)$", r["name"])
    if m:
        B, T, H, D = map(int, m.group(1, 2, 3, 4))
        ours[(B, T, H, D, bool(m.group(5)), m.group(6))] = r["ms"]


def time_ms(fn, reps=50, warmup=10):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts)


torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
print(f"# {torch.cuda.get_device_name()}, PyTorch {torch.__version__}, fp32 (TF32 off)")
print(f"{'shape':32} {'ours fwd':>9} {'SDPA fwd':>9} {'ratio':>6} {'ours f+b':>9} {'SDPA f+b':>9} {'ratio':>6}")
rows = []
for (B, T, H, D, causal, kind) in sorted(k for k in ours if k[5] == "fwd"):
    q, k, v = (torch.randn(B, H, T, D, device="cuda", requires_grad=True) for _ in range(3))
    g = torch.randn(B, H, T, D, device="cuda")
    sdpa = torch.nn.functional.scaled_dot_product_attention
    fwd = time_ms(lambda: sdpa(q, k, v, is_causal=causal))

    def fb():
        o = sdpa(q, k, v, is_causal=causal)
        o.backward(g)

    both = time_ms(fb)
    o_f, o_fb = ours[(B, T, H, D, causal, "fwd")], ours.get((B, T, H, D, causal, "fwd+bwd"), float("nan"))
    shape = f"B{B} T{T} H{H} D{D}{' causal' if causal else ''}"
    print(f"{shape:32} {o_f:9.4f} {fwd:9.4f} {o_f / fwd:6.2f} {o_fb:9.4f} {both:9.4f} {o_fb / both:6.2f}")
    rows.append(dict(shape=shape, ours_fwd_ms=o_f, sdpa_fwd_ms=fwd, ours_fwd_bwd_ms=o_fb, sdpa_fwd_bwd_ms=both))
target = [r for r in rows if r["shape"].startswith("B1 T1024 H8 D64")]
if target:
    r = target[0]["ours_fwd_bwd_ms"] / target[0]["sdpa_fwd_bwd_ms"]
    print(f"target (T 1024, D 64, fwd+bwd within 2x of SDPA): {r:.2f}x -> {'met' if r <= 2 else 'MISSED'}")
if args.json:
    json.dump(rows, open(args.json, "w"), indent=1)
