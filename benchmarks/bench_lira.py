"""Benchmark of the likelihood-ratio attack: its budget, and its share of an evaluation and a leaderboard.

1. ``lira_attack`` on 512 unlearned + 512 retrained models x 5,000 examples (target <= 5 s on 2 cores).
2. Its share of an N = 512 evaluation: what the evaluation adds (``lira_row`` for every method, the oracle
   reference and the original, at the evaluation's N and forget-set size), timed here on synthetic
   confidences of that shape, over the evaluation's wall time: read from ``--results`` (an evaluation's
   results.json: ``timings_seconds.total``, its rows and forget-set size) or, without it, the digits
   figures of benchmarks/RESULTS.md (377 s cold, 132 s warm, 126 forget examples, SRFL + baseline).
   Target <= 5%.
3. The leaderboard's LiRA intervals (``bootstrap_lira``, ``--reps`` replicates of ``--rows`` rows at that
   shape), timed on ``--time-reps`` replicates and extrapolated.

    .venv/bin/python benchmarks/bench_lira.py [--results outputs/RUN/results.json] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from bench_metric import synthetic_confidences  # noqa: E402
from unlearning_mock.mock_evaluator.scoring.lira import lira_attack, lira_row  # noqa: E402
from unlearning_mock.mock_evaluator.scoring.uncertainty import bootstrap_lira  # noqa: E402

# digits at N = 512 (benchmarks/RESULTS.md, "make evaluate"): wall seconds, and the rows scored
DIGITS_EVALUATION = {"cold": 377.0, "warm": 132.0}
DIGITS_FORGET = 126
DIGITS_ROWS = 4            # SRFL, the kit baseline, the oracle reference, the original


def best_of(repeat: int, call) -> tuple[float, float]:
    """The best wall and the best CPU seconds (this process, all its threads) of ``repeat`` calls: on a shared
    machine the wall time moves with the load, the CPU time much less."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=512, help="models per side")
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats (the best is printed)")
    parser.add_argument("--results", help="an evaluation's results.json (default: the digits figures of RESULTS.md)")
    parser.add_argument("--rows", type=int, default=22, help="leaderboard rows (20 methods + oracle + original)")
    parser.add_argument("--reps", type=int, default=100, help="leaderboard bootstrap replicates")
    parser.add_argument("--time-reps", type=int, default=5, help="bootstrap replicates actually timed")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"{os.cpu_count()} CPUs")

    unlearned, retrained = synthetic_confidences(args.models, args.examples, seed=0)
    wall, cpu = best_of(args.repeat, lambda: lira_attack(unlearned, retrained))
    print(f"lira_attack, {args.models} + {args.models} models x {args.examples} examples: {wall:.2f} s wall, "
          f"{cpu:.2f} s CPU (best of {args.repeat}; target <= 5 s)")

    if args.results:
        record = json.loads(pathlib.Path(args.results).read_text())
        n, m = record["config"]["num_models"], record["setting"]["forget_size"]
        rows = len(record["methods"]) + 1                    # + the original
        walls = {"this run": record["timings_seconds"]["total"]}
        source = args.results
    else:
        n, m, rows, walls, source = 512, DIGITS_FORGET, DIGITS_ROWS, DIGITS_EVALUATION, "benchmarks/RESULTS.md"
    unlearned, retrained = synthetic_confidences(n, m, seed=1)
    per_row, per_row_cpu = best_of(args.repeat, lambda: lira_row(unlearned, retrained))
    added = rows * per_row
    print(f"an evaluation at N = {n}, {m} forget examples, {rows} rows: lira_row {per_row * 1e3:.1f} ms wall "
          f"({per_row_cpu * 1e3:.1f} ms CPU) a row, {added:.2f} s added")
    for label, wall in walls.items():
        print(f"  share of the evaluation's wall time ({label}: {wall:.0f} s, from {source}): "
              f"{100 * added / wall:.2f}% (target <= 5%)")

    figures = {f"row {k}": {"forget_conf": unlearned} for k in range(args.rows)}
    wall, cpu = best_of(1, lambda: bootstrap_lira(figures, {"forget_conf": retrained}, reps=args.time_reps))
    print(f"leaderboard intervals: {wall / args.time_reps:.2f} s wall ({cpu / args.time_reps:.2f} s CPU) a replicate "
          f"of {args.rows} rows, {wall / args.time_reps * args.reps:.0f} s wall for {args.reps} replicates")


if __name__ == "__main__":
    main()
