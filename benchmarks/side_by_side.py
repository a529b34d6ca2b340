#!/usr/bin/env python3
"""One training step of the `seemore` preset, ours and PyTorch's, in the same
run on the same machine with the same thread count; prints the ratios.

  side_by_side.py [--bench build/benchmarks/seemore-bench] [--threads 2]
                  [--steps 10] [--rounds 3] [--device cpu|cuda] [--compile]
                  [--json OUT] [--svg OUT] [--blas LIB] [--torch-blas LIB]

Every contender is timed once per round, rounds alternating them, and the
figure reported is the median over rounds of each round's median step: a
machine that slows down for a while slows everyone. The PyTorch users run is
PyPI's (scripts/get-torch.sh sets it up outside the repository); Debian's
python3-torch also works. On a CPU the report starts with the processor's
name and vector flags and ends with seemore's three targets: the default
build against PyTorch's best, the GEMMs against the measured FMA peak
(seemore-microbench), the whole step against its matrix GFLOP ÷ peak (the layers' GEMMs and
attention's per-head products, causal ones counted at the half they need;
the ratio to the GEMMs' alone is printed too), then target 3's budget split:
the time the layers' GEMMs take at their in-step rate and the rest of the
step, and with --blas the BLAS's GEMMs at their rate in its own step (what a
vendor's kernels would leave of the budget).

--portable-bench times a second seemore-bench, built as an installed package's
user builds (no -march=native: cmake -DSEEMORE_NATIVE=OFF), in the same rounds;
--cpu-cap caps seemore's kernels (SEEMORE_CPU=avx2 emulates an AVX2-only x86,
and the targets then divide by the AVX2 loop's peak, that processor's limit);
--torch-avx2 holds eager PyTorch to AVX2 as well (not with --compile, which
then crashes in PyTorch 2.15).
--blas also times seemore with its float GEMMs on the BLAS at LIB (SEEMORE_BLAS);
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
import re
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
    inside = "MKL linked into libtorch (torch.backends.mkl); " if torch.backends.mkl.is_available() else ""
    return (inside + "mapped: " + (", ".join(sorted(libs)) or "none found (statically linked?)")
            + (f"; OPENBLAS_CORETYPE={core}" if core else "")
            + (f"; LD_PRELOAD={preload} (its sgemm_ is the one called)" if preload else ""))


def cpu_description():
    """The processor's name and the vector flags that decide which kernels run."""
    name, flags = "unknown processor", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name == "unknown processor":
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    family = ""
    try:
        with open("/proc/cpuinfo") as f:
            info = dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in f) if k.strip())
        family = f" (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"
    except OSError:
        pass
    wanted = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16",
              "amx_tile"]
    return name + family, " ".join(f for f in wanted if f in flags) or "none of the AVX family"


def measured_peak(bench, cap=None):
    """FMA peak and the loop that reached it, from seemore-microbench next to seemore-bench.

    The microbenchmark's peak is the best form the processor has. Under
    --cpu-cap avx2, which stands in for an AVX2-only processor, the limit of
    that processor is the AVX2 loop's (half the AVX-512 one where both FMA
    ports are 512 bits wide), so that form's figure is taken instead."""
    micro = os.path.join(os.path.dirname(bench), "seemore-microbench")
    if not os.path.exists(micro):
        return None, None
    out = subprocess.run([micro, "--benchmark_filter=^$"], capture_output=True, text=True).stdout
    m = re.search(r"measured fp32 FMA peak ([0-9.]+) GFLOP/s \((\w+) loop; by form: ([^)]*)\)", out)  # start-up line
    if not m:
        return None, None
    if cap == "avx2":
        forms = dict((f.split()[0], float(f.split()[1])) for f in m.group(3).split(", "))
        if "avx2" in forms:
            return forms["avx2"], "avx2"
    return float(m.group(1)), m.group(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=os.path.join(HERE, "..", "build", "benchmarks", "seemore-bench"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds; medians over them are reported")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--text-len", type=int, default=63)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--compile", action="store_true", help="also time the expert model under torch.compile")
    ap.add_argument("--json")
    ap.add_argument("--svg")
    ap.add_argument("--portable-bench", help="also this seemore-bench, built without -march=native")
    ap.add_argument("--cpu-cap", choices=["avx512", "avx2", "scalar"],
                    help="SEEMORE_CPU for seemore's runs (PyTorch keeps its own choice: see --torch-avx2)")
    ap.add_argument("--torch-avx2", action="store_true",
                    help="hold eager PyTorch to AVX2 too (ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS)")
    ap.add_argument("--blas", help="seemore's float GEMMs on this BLAS library (SEEMORE_BLAS)")
    ap.add_argument("--torch-blas", help="PyTorch's GEMMs on this BLAS library (through LD_PRELOAD)")
    a = ap.parse_args()

    if a.torch_avx2 and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        if a.compile:
            sys.exit("side_by_side.py: --torch-avx2 with --compile: PyTorch 2.15's compiled model segfaults "
                     "under ATEN_CPU_CAPABILITY=avx2; time the compiled one without it")
        # Read at import: PyTorch's own kernels and its MKL held to AVX2.
        env = dict(os.environ, ATEN_CPU_CAPABILITY="avx2", MKL_ENABLE_INSTRUCTIONS="AVX2")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    if a.torch_blas and os.environ.get("LD_PRELOAD") != a.torch_blas:
        env = dict(os.environ, LD_PRELOAD=a.torch_blas)
        env.setdefault("MKL_THREADING_LAYER", "GNU")  # MKL threads on PyTorch's OpenMP runtime
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    ours_env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MKL_THREADING_LAYER")}
    if a.blas:
        ours_env["SEEMORE_BLAS"] = a.blas

    torch.set_num_threads(a.threads)

    if a.cpu_cap:
        ours_env["SEEMORE_CPU"] = a.cpu_cap

    def run_ours(env, bench=None):
        return json.loads(subprocess.run(
            [bench or a.bench, "--json", "--threads", str(a.threads), "--steps", str(max(a.steps, 10)), "--warmup",
             str(a.warmup), "--batch-size", str(a.batch_size), "--text-len", str(a.text_len), "--device", a.device],
            check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1])

    default_env = {k: v for k, v in ours_env.items() if k != "SEEMORE_BLAS"}
    models = {"PyTorch reference code": lambda: seemore_torch.VisionLanguageModel(SEEMORE, True),
              "PyTorch expert": lambda: expert_model.VisionLanguageModel(SEEMORE, True)}
    if a.compile:
        compiled = {}

        def compiled_expert():  # compiled once; later rounds reuse it, as a training run would
            if "m" not in compiled:
                torch.manual_seed(0)
                compiled["m"] = torch.compile(expert_model.VisionLanguageModel(SEEMORE, True))
            return compiled["m"]
        models["PyTorch expert, torch.compile"] = compiled_expert
    rounds = {}
    runs, blas_runs = [], []
    peaks = []  # measured in every round too: a busy host lowers the peak and the step together
    for r in range(a.rounds):
        if a.device == "cpu":
            p = measured_peak(a.bench, a.cpu_cap)
            if p[0]:
                peaks.append(p)
        run = run_ours(default_env)
        runs.append(run)
        rounds.setdefault("seemore", []).append(run["step_s_median"])
        if a.portable_bench and a.device == "cpu":
            rounds.setdefault("seemore, no -march=native", []).append(
                run_ours(default_env, a.portable_bench)["step_s_median"])
        if a.blas and a.device == "cpu":
            blas_run = run_ours(ours_env)
            blas_runs.append(blas_run)
            rounds.setdefault("seemore, SEEMORE_BLAS", []).append(blas_run["step_s_median"])
        for name, make in models.items():
            torch.manual_seed(0)
            warm = a.warmup + (3 if "compile" in name and r == 0 else 0)
            rounds.setdefault(name, []).append(time_torch(make(), a.device, a.batch_size, a.text_len, a.steps, warm))
    results = {name: statistics.median(ts) for name, ts in rounds.items()}
    def median_run(rs):  # the median round's details
        return sorted(rs, key=lambda o: o["step_s_median"])[len(rs) // 2]
    ours = median_run(runs)
    cpu_name, cpu_flags = cpu_description() if a.device == "cpu" else ("", "")
    peak, peak_loop = sorted(peaks)[len(peaks) // 2] if peaks else (None, None)

    if a.device == "cpu":
        print(f"processor: {cpu_name}; flags: {cpu_flags}; PyTorch's CPU capability: "
              f"{torch.backends.cpu.get_cpu_capability()}")
    print(f"torch {torch.__version__}, {a.threads} threads, device {a.device}, batch {a.batch_size}, "
          f"{a.text_len} text tokens, median over {a.rounds} alternated rounds of each one's median of "
          f"{a.steps} steps"
          f"{'' if expert_model.HAS_SDPA else ' (no scaled_dot_product_attention in this PyTorch: batched matmuls)'}")
    print(f"PyTorch's BLAS: {blas_in_use()}")
    print(f"seemore's float GEMMs: {ours.get('gemm_library', 'Eigen')}"
          f"{'; SEEMORE_CPU=' + a.cpu_cap if a.cpu_cap else ''}"
          f"{'; with --blas: ' + a.blas if a.blas else ''}")
    print(f"{'':32s} {'step':>10s} {'vs seemore':>11s}   rounds")
    for name, t in results.items():
        print(f"{name:32s} {t * 1e3:8.1f} ms {t / results['seemore']:10.2f}x   "
              + " ".join(f"{x * 1e3:.0f}" for x in rounds[name]))
    print(f"seemore: GEMMs {ours['gemm_share'] * 100:.0f}% of the step at {ours['gemm_gflops']:.0f} GFLOP/s; "
          f"peak memory {ours['peak_rss_mib']:.0f} MiB; captioning {ours['caption_cached_ms_per_token']:.2f} ms/token "
          f"with the KV cache vs {ours['caption_full_ms_per_token']:.2f} re-running the forward "
          f"({ours['caption_full_ms_per_token'] / ours['caption_cached_ms_per_token']:.1f}x)")
    targets = {}
    if a.device == "cpu":
        torch_best = min(t for n, t in results.items() if n.startswith("PyTorch expert"))
        targets["default_vs_torch_best"] = torch_best / results["seemore"]
        print(f"target 1, seemore (default build) vs PyTorch's best expert step: "
              f"{targets['default_vs_torch_best']:.2f}x faster (target >= 1.5)")
        if peak:
            # GFLOP per step: the layers' GEMMs (timed) and, from builds that count
            # them, attention's per-head products (causal ones at the half they need).
            gemm_flop = ours.get("gemm_gflop_per_step",
                                 ours["gemm_gflops"] * ours["gemm_share"] * ours["step_s_median"])
            attention_flop = ours.get("attention_gflop_per_step", 0.0)
            step_flop = gemm_flop + attention_flop
            targets["gemm_share_of_peak"] = ours["gemm_gflops"] / peak
            targets["step_vs_flop_bound"] = results["seemore"] / (step_flop / peak)
            targets["step_vs_gemm_only_bound"] = results["seemore"] / (gemm_flop / peak)
            print(f"target 2, the step's GEMMs: {ours['gemm_gflops']:.0f} GFLOP/s = "
                  f"{targets['gemm_share_of_peak'] * 100:.0f}% of the measured peak {peak:.0f} GFLOP/s "
                  f"({peak_loop} loop; median of the rounds' {', '.join(f'{p:.0f}' for p, _ in peaks)}) "
                  f"(target >= 70%)")
            print(f"target 3, the step: {results['seemore'] * 1e3:.0f} ms = {targets['step_vs_flop_bound']:.2f}x "
                  f"of its {step_flop:.1f} matrix GFLOP ({gemm_flop:.1f} in the layers' GEMMs, "
                  f"{attention_flop:.2f} in attention) at peak ({step_flop / peak * 1e3:.0f} ms) (target <= 1.5); "
                  f"{targets['step_vs_gemm_only_bound']:.2f}x of the GEMMs' alone")
            # Target 3's budget split: the layers' GEMMs at their in-step rate, and
            # everything else. With a BLAS, its GEMMs at their rate in the same step
            # show what a vendor's kernels leave of the budget.
            budget = 1.5 * step_flop / peak
            gemm_s = gemm_flop / ours["gemm_gflops"]
            rest_s = ours["step_s_median"] - gemm_s
            line = (f"target 3's budget, 1.5x the bound: {budget * 1e3:.0f} ms; the layers' GEMMs take "
                    f"{gemm_s * 1e3:.0f} ms of the median round's step, the rest {rest_s * 1e3:.0f} ms")
            targets["budget_ms"], targets["gemm_ms"], targets["rest_ms"] = budget * 1e3, gemm_s * 1e3, rest_s * 1e3
            if blas_runs:
                blas = median_run(blas_runs)
                blas_gemm_s = gemm_flop / blas["gemm_gflops"]
                targets["blas_gemm_share_of_peak"] = blas["gemm_gflops"] / peak
                targets["blas_gemm_ms"] = blas_gemm_s * 1e3
                line += (f"; on SEEMORE_BLAS the GEMMs run at {blas['gemm_gflops']:.0f} GFLOP/s = "
                         f"{targets['blas_gemm_share_of_peak'] * 100:.0f}% of the peak and take "
                         f"{blas_gemm_s * 1e3:.0f} ms")
            print(line)
        if a.portable_bench:
            targets["portable_vs_native"] = results["seemore, no -march=native"] / results["seemore"]
            print(f"built without -march=native: {targets['portable_vs_native']:.3f}x the step of the "
                  f"-march=native build (target <= 1.05)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"torch": torch.__version__, "blas": blas_in_use(), "seemore_gemm": ours.get("gemm_library"),
                       "threads": a.threads, "device": a.device, "processor": cpu_name, "flags": cpu_flags,
                       "cpu_cap": a.cpu_cap,
                       "peak_gflops": peak, "peak_loop": peak_loop, "peaks": [p for p, _ in peaks], "rounds_s": rounds,
                       "steps_s": results, "targets": targets,
                       "seemore_bench": ours}, f, indent=1)
    if a.svg:
        def label(name):
            if name == "seemore, SEEMORE_BLAS":
                return f"seemore, GEMMs on {os.path.basename(a.blas)}"
            if name.startswith("PyTorch") and a.torch_blas:
                return f"{name} ({os.path.basename(a.torch_blas)})"
            return name
        svg_bars(a.svg, f"training step, seemore preset, batch {a.batch_size} ({a.device}, {a.threads} threads)",
                 [(label(n), t) for n, t in results.items()])


if __name__ == "__main__":
    main()
