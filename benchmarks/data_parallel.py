#!/usr/bin/env python3
"""Data parallelism on this machine, and a model of it on a cluster.

Runs seemore-train on synthetic scenes (seemore-synth) for the seemore and
standard presets, global batch 16, in three set-ups alternated round by round:
one process with 2 threads, 2 MPI ranks with 1 thread each (gradients summed
during the backward), and the same without that overlap. Reports the median
step, the share of it spent waiting for the sums after the backward, and the
bytes summed per step. Then runs seemore-allreduce-bench, and models a step at
2-64 ranks over 10 and 100 Gb/s links from the measured compute time.

    benchmarks/data_parallel.py [--build build] [--steps 12] [--rounds 3]
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--build", default="build")
ap.add_argument("--steps", type=int, default=12)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--presets", default="seemore,standard")
ap.add_argument("--mpiexec", default="mpirun")
args = ap.parse_args()

ex = os.path.join(args.build, "examples")
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")
work = tempfile.mkdtemp(prefix="seemore-dp-")
subprocess.run([f"{ex}/seemore-synth", "--out", f"{work}/data", "--count", "400", "--seed", "1"], check=True,
               stdout=subprocess.DEVNULL)


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run(preset, setup):
    out = f"{work}/{preset}-{setup}"
    subprocess.run(["rm", "-rf", out])
    cmd = [f"{ex}/seemore-train", "--data", f"{work}/data/captions.jsonl", "--preset", preset, "--vocab", "captions",
           "--steps", str(args.steps), "--batch-size", "16", "--eval-interval", "1000000", "--eval-iters", "0",
           "--quiet", "--out", out]
    e = dict(env)
    if setup == "1x2":
        e["OMP_NUM_THREADS"] = "2"
    else:
        e["OMP_NUM_THREADS"] = "1"
        cmd = [args.mpiexec, "-np", "2", "-x", "OMP_NUM_THREADS"] + cmd
        if setup == "2x1-no-overlap":
            cmd.append("--no-overlap")
    p = subprocess.run(cmd, env=e, capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    times = [json.loads(l)["elapsed_s"] for l in open(f"{out}/metrics.jsonl") if '"eval"' not in l]
    steps = [b - a for a, b in zip(times, times[1:])]  # the first step (allocations) is left out
    wait = mib = 0.0
    m = re.search(r"a step, ([0-9.]+) s of it .* ([0-9.]+) MiB summed", p.stderr)
    if m:
        wait, mib = float(m.group(1)), float(m.group(2))
    return statistics.median(steps), wait, mib


print(f"# {cpu_name()}, {os.cpu_count()} cores; global batch 16, {args.steps} steps, {args.rounds} rounds alternated")
results = {}
setups = ["1x2", "2x1", "2x1-no-overlap"]
names = {"1x2": "1 process x 2 threads", "2x1": "2 ranks x 1 thread", "2x1-no-overlap": "2 ranks x 1 thread, no overlap"}
for preset in args.presets.split(","):
    for r in range(args.rounds):
        for s in setups:
            results.setdefault((preset, s), []).append(run(preset, s))
print("\n| preset | set-up | median step (s) | waiting for the sums | summed per step |")
print("|---|---|---|---|---|")
measured = {}
for (preset, s), rs in results.items():
    step = statistics.median(x[0] for x in rs)
    wait = statistics.median(x[1] for x in rs)
    mib = rs[0][2]
    measured[(preset, s)] = (step, wait, mib)
    share = f"{wait:.4f} s ({100 * wait / step:.1f}%)" if s != "1x2" else "-"
    print(f"| {preset} | {names[s]} | {' / '.join(f'{x[0]:.3f}' for x in rs)} (median {step:.3f}) | {share} | "
          f"{f'{mib:.1f} MiB' if mib else '-'} |")

print("\n## seemore-allreduce-bench, 2 ranks")
p = subprocess.run([args.mpiexec, "-np", "2", f"{args.build}/benchmarks/seemore-allreduce-bench", "--reps", "10"],
                   env=dict(env, OMP_NUM_THREADS="1"), capture_output=True, text=True)
print(p.stdout)

# ---- a model of the step on a cluster: each rank computes 16 samples (weak
# scaling: the global batch is 16·N), the sum moves 2(N−1)/N of the gradients
# in and out of each rank over the link, plus 2(N−1) message latencies per
# bucket. Overlap hides the sum behind the backward except its last bucket.
print("## Model: a step at N ranks, 16 samples a rank (global batch 16·N)")
print("compute: the 2-rank step minus its wait (1 thread a rank, 8 samples), doubled for 16 samples;"
      " backward taken as 2/3 of it; latency 30 us a message (10 Gb/s) / 10 us (100 Gb/s)")
print("\n| preset | link | N | sum alone (s) | step, sum after backward (s) | step, overlapped (s) | efficiency overlapped |")
print("|---|---|---|---|---|---|---|")
for preset in args.presets.split(","):
    step2, wait2, mib = measured[(preset, "2x1")]
    compute = 2 * (step2 - wait2)
    backward = compute * 2 / 3
    S = mib * (1 << 20)
    buckets = max(1, round(mib))  # 1 MiB buckets
    for gbps, alpha in ((10, 30e-6), (100, 10e-6)):
        W = gbps / 8 * 1e9
        for N in (2, 4, 8, 16, 32, 64):
            t_sum = 2 * (N - 1) / N * S / W + 2 * (N - 1) * alpha * buckets
            after = compute + t_sum
            last = t_sum / buckets
            overlapped = compute + max(last, t_sum - backward)
            print(f"| {preset} | {gbps} Gb/s | {N} | {t_sum:.3f} | {after:.3f} | {overlapped:.3f} | "
                  f"{100 * compute / overlapped:.0f}% |")
