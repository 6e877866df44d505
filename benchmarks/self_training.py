"""Noisy Student and Meta Pseudo Labels on digits with 10 labels per class, 3 seeds.

    python benchmarks/self_training.py [--seeds 0 1 2] [--out build/self-training]

For each seed, two commands a user types, each in its own process:

    kerasarch noisy-student --iterations 2 --seed S --run-dir OUT/noisy-student-S
    kerasarch mpl --seed S --run-dir OUT/mpl-S

with every other option at its default (LeNet-5, 10 labeled images per class drawn by the
seed from digits' train split, the rest of train as the unlabeled set, the test split
untouched). The supervised baseline is Noisy Student's first teacher: the same LeNet-5,
trained on the labeled images alone with the model's own recipe. Noisy Student's rows are
its students after iterations 1 and 2; MPL's rows are its teacher, its student after the
joint training, and that student fine-tuned on the labeled images (the paper's last step).

An existing run folder is resumed (finished stages are read back), so a killed benchmark
continues where it stopped. Writes benchmarks/results/self_training.md and .json: every
seed's test top-1 and the mean and sample standard deviation over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# (row, job, how its test top-1 is read from the job's summary.json)
ROWS = (
    ("supervised baseline (labeled images only)", "noisy-student",
     lambda s: s["iterations"][0]["teacher"]["test_top1"]),
    ("Noisy Student, iteration 1", "noisy-student",
     lambda s: s["iterations"][0]["student"]["test_top1"]),
    ("Noisy Student, iteration 2", "noisy-student",
     lambda s: s["iterations"][1]["student"]["test_top1"]),
    ("MPL teacher", "mpl", lambda s: s["teacher_test_top1"]),
    ("MPL student (joint training)", "mpl", lambda s: s["mpl_student_test_top1"]),
    ("MPL student, fine-tuned on the labeled images", "mpl", lambda s: s["finetuned_test_top1"]),
)


def run_job(job: str, seed: int, out: Path) -> tuple[dict, float]:
    """Runs one `kerasarch` job in a subprocess; returns its summary.json and the seconds it took."""
    run_dir = out / f"{job}-{seed}"
    command = [sys.executable, "-m", "kerasarch", job, "--seed", str(seed), "--run-dir",
               str(run_dir), "--verbose", "2"]
    if job == "noisy-student":
        command += ["--iterations", "2"]
    print("$ kerasarch", " ".join(command[3:]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    return json.loads((run_dir / "summary.json").read_text()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=str(ROOT / "build" / "self-training"),
                        help="folder of the run folders (an existing one is resumed)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summaries: dict[tuple[str, int], dict] = {}
    seconds: dict[str, list[float]] = {"noisy-student": [], "mpl": []}
    for seed in args.seeds:
        for job in ("noisy-student", "mpl"):
            summaries[job, seed], took = run_job(job, seed, out)
            seconds[job].append(took)
    rows = []
    for name, job, read in ROWS:
        values = [read(summaries[job, seed]) for seed in args.seeds]
        rows.append({"method": name, "job": job,
                     "test_top1": dict(zip(map(str, args.seeds), values, strict=True)),
                     "mean": statistics.mean(values),
                     "std": statistics.stdev(values) if len(values) > 1 else 0.0})
    import tensorflow as tf  # only for the version in the machine's description

    machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
               f"TF {tf.__version__}")
    config = json.loads((out / f"noisy-student-{args.seeds[0]}" / "noisy_student.json").read_text())
    result = {"machine": machine, "seeds": args.seeds, "rows": rows,
              "seconds_per_job": {k: statistics.mean(v) for k, v in seconds.items()},
              "noisy_student_config": config["config"],
              "mpl_config": json.loads((out / f"mpl-{args.seeds[0]}" / "mpl.json").read_text())["config"]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "self_training.json").write_text(json.dumps(result, indent=2) + "\n")
    seeds = ", ".join(map(str, args.seeds))
    lines = [
        "# Self-training on digits, 10 labels per class",
        "",
        f"`python benchmarks/self_training.py` on {machine}: `kerasarch noisy-student --iterations 2` "
        f"and `kerasarch mpl`, defaults otherwise (LeNet-5; {config['config']['labels_per_class']} "
        "labeled images per class drawn by the seed from digits' train split, the rest of it "
        f"unlabeled; the test split untouched), seeds {seeds}. Test top-1 in %, mean ± sample "
        "standard deviation over the seeds.",
        "",
        "| method | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean ± std |",
        "|---|" + "---:|" * (len(args.seeds) + 1),
    ]
    for row in rows:
        cells = " | ".join(f"{100 * v:.2f}" for v in row["test_top1"].values())
        lines.append(f"| {row['method']} | {cells} | {100 * row['mean']:.2f} ± {100 * row['std']:.2f} |")
    lines += ["", "Seconds per job (mean over seeds; timed on a quiet machine only): " + ", ".join(
        f"{job} {s:.0f} s" for job, s in result["seconds_per_job"].items()) + "."]
    (RESULTS / "self_training.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
