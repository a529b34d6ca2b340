#!/usr/bin/env python3
"""One training step of the `seemore` preset, ours and PyTorch's, in the same
run on the same machine with the same thread count; prints the ratios.

  side_by_side.py [--bench build/benchmarks/seemore-bench] [--threads 2]
                  [--steps 10] [--device cpu|cuda] [--compile] [--json OUT] [--svg OUT]
                  [--blas LIB] [--torch-blas LIB]

--blas hands seemore's float GEMMs to the BLAS at LIB (SEEMORE_BLAS);
--torch-blas runs PyTorch's on it too (the script restarts itself with LIB in
LD_PRELOAD, so that LIB's sgemm_ takes the place of the libblas.so.3 that
Debian's PyTorch calls). Give both the same LIB to compare like with like.

PyTorch runs (a) the reference code (tests/reference/seemore_torch.py:
per-head attention modules, as the reference is written) and (b) the expert
version (benchmarks/pytorch/expert_model.py: fused QKV, batched heads,
scaled_dot_product_attention where available), optionally (c) (b) under
torch.compile. Each PyTorch step is forward + backward + Adam on random
images and tokens of the same shapes as seemore-bench's (batch 16, 63 text
tokens, 96×96 images): compute only, no data loading for anyone.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
sys.path.insert(0, os.path.join(HERE, "pytorch"))
import expert_model  # noqa: E402
import seemore_torch  # noqa: E402

SEEMORE = dict(img_size=96, patch_size=16, image_embed_dim=512, num_blks=3, n_embd=128, n_layer=8, n_head=8,
               vocab_size=66, block_size=1000, dropout=0.1)


def time_torch(model, device, batch, text_len, steps, warmup):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, 96, 96, generator=g).to(device)
    idx = torch.randint(0, 65, (batch, text_len), generator=g).to(device)
    targets = torch.cat([torch.full((batch, 1), -100), torch.randint(0, 66, (batch, text_len), generator=g)], 1)
    targets = targets.to(device)
    model = model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for s in range(warmup + steps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _, loss = model(images, idx, targets)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if s >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def svg_bars(path, title, bars):
    """A horizontal bar chart, no plotting library needed."""
    left = max(230, 20 + 7 * max(len(name) for name, _ in bars))  # ≈7 px per character at 13 px
    w, h, row = left + 410, 60 + 34 * len(bars), 34
    top = max(v for _, v in bars)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="13">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']
    for i, (name, v) in enumerate(bars):
        y = 40 + i * row
        bw = (w - left - 90) * v / top
        colour = "#1f77b4" if name.startswith("seemore") else "#d62728"
        out.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end">{name}</text>')
        out.append(f'<rect x="{left}" y="{y + 4}" width="{bw:.1f}" height="20" fill="{colour}"/>')
        out.append(f'<text x="{left + bw + 6:.1f}" y="{y + 18}">{v * 1e3:.0f} ms</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def blas_in_use():
    """The BLAS library this process has mapped (Debian's PyTorch calls whatever
    libblas.so.3 points to), and OpenBLAS's core override if set: the PyTorch
    step varies 3x between them on one machine, so every ratio names it."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if any(n in os.path.basename(path) for n in ("blas", "blis", "mkl_rt")):
                    libs.add(os.path.realpath(path))
    except OSError:
        return "unknown"
    core, preload = os.environ.get("OPENBLAS_CORETYPE"), os.environ.get("LD_PRELOAD")
    return ((", ".join(sorted(libs)) or "none found (statically linked?)")
            + (f"; OPENBLAS_CORETYPE={core}" if core else "")
            + (f"; LD_PRELOAD={preload} (its sgemm_ is the one called)" if preload else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=os.path.join(HERE, "..", "build", "benchmarks", "seemore-bench"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--text-len", type=int, default=63)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--compile", action="store_true", help="also time the expert model under torch.compile")
    ap.add_argument("--json")
    ap.add_argument("--svg")
    ap.add_argument("--blas", help="seemore's float GEMMs on this BLAS library (SEEMORE_BLAS)")
    ap.add_argument("--torch-blas", help="PyTorch's GEMMs on this BLAS library (through LD_PRELOAD)")
    a = ap.parse_args()

    if a.torch_blas and os.environ.get("LD_PRELOAD") != a.torch_blas:
        env = dict(os.environ, LD_PRELOAD=a.torch_blas)
        env.setdefault("MKL_THREADING_LAYER", "GNU")  # MKL threads on PyTorch's OpenMP runtime
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    ours_env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MKL_THREADING_LAYER")}
    if a.blas:
        ours_env["SEEMORE_BLAS"] = a.blas

    torch.set_num_threads(a.threads)

    def run_ours(env):
        return json.loads(subprocess.run(
            [a.bench, "--json", "--threads", str(a.threads), "--steps", str(max(a.steps, 10)), "--warmup",
             str(a.warmup), "--batch-size", str(a.batch_size), "--text-len", str(a.text_len), "--device", a.device],
            check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1])

    ours = run_ours(ours_env)
    results = {"seemore": ours["step_s_median"]}
    if a.blas and a.device == "cpu":  # and on Eigen, the default, for the same chart
        results["seemore, GEMMs on Eigen"] = run_ours({k: v for k, v in ours_env.items() if k != "SEEMORE_BLAS"})[
            "step_s_median"]
    torch.manual_seed(0)
    results["PyTorch reference code"] = time_torch(seemore_torch.VisionLanguageModel(SEEMORE, True), a.device,
                                                   a.batch_size, a.text_len, a.steps, a.warmup)
    torch.manual_seed(0)
    results["PyTorch expert"] = time_torch(expert_model.VisionLanguageModel(SEEMORE, True), a.device,
                                           a.batch_size, a.text_len, a.steps, a.warmup)
    if a.compile:
        torch.manual_seed(0)
        m = torch.compile(expert_model.VisionLanguageModel(SEEMORE, True))
        results["PyTorch expert, torch.compile"] = time_torch(m, a.device, a.batch_size, a.text_len, a.steps,
                                                              a.warmup + 3)

    print(f"torch {torch.__version__}, {a.threads} threads, device {a.device}, batch {a.batch_size}, "
          f"{a.text_len} text tokens, median of {a.steps} steps"
          f"{'' if expert_model.HAS_SDPA else ' (no scaled_dot_product_attention in this PyTorch: batched matmuls)'}")
    print(f"PyTorch's BLAS: {blas_in_use()}")
    print(f"seemore's float GEMMs: {ours.get('gemm_library', 'Eigen')}")
    print(f"{'':32s} {'step':>10s} {'vs seemore':>11s}")
    for name, t in results.items():
        print(f"{name:32s} {t * 1e3:8.1f} ms {t / results['seemore']:10.2f}x")
    print(f"seemore: GEMMs {ours['gemm_share'] * 100:.0f}% of the step at {ours['gemm_gflops']:.0f} GFLOP/s; "
          f"peak memory {ours['peak_rss_mib']:.0f} MiB; captioning {ours['caption_cached_ms_per_token']:.2f} ms/token "
          f"with the KV cache vs {ours['caption_full_ms_per_token']:.2f} re-running the forward "
          f"({ours['caption_full_ms_per_token'] / ours['caption_cached_ms_per_token']:.1f}x)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"torch": torch.__version__, "blas": blas_in_use(), "seemore_gemm": ours.get("gemm_library"),
                       "threads": a.threads, "device": a.device,
                       "steps_s": results,
                       "seemore_bench": ours}, f, indent=1)
    if a.svg:
        def label(name):
            if name == "seemore" and a.blas:
                return f"seemore, GEMMs on {os.path.basename(a.blas)}"
            if name.startswith("PyTorch") and a.torch_blas:
                return f"{name} ({os.path.basename(a.torch_blas)})"
            return name
        svg_bars(a.svg, f"training step, seemore preset, batch {a.batch_size} ({a.device}, {a.threads} threads)",
                 [(label(n), t) for n, t in results.items()])


if __name__ == "__main__":
    main()
