"""Do the leaderboard's intervals hold? Score a few methods at N = 128 with a main seed and with several
independent seeds (new oracles and new runs each), and count how often an independent seed's score falls
inside the main run's 95% interval.

    python benchmarks/check_intervals.py [--methods ft-kaggle,fcs] [--num-models 128] [--seeds 1,2,3,4,5]

Prints and writes ``outputs/interval-check-n<N>/coverage.csv`` (a row per method and seed) and
``summary.csv`` (per method: the main interval, how many seeds fell inside, the bootstrap standard deviation
next to the standard deviation across the seeds). Note: even a perfectly calibrated 95% interval of one run
holds a *new* run's score less often than 95% of the time, since both runs are noisy (about 83% for a
normal estimate); the standard-deviation ratio is the direct check of the interval's width.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unlearning_mock.mock_evaluator.evaluate import EvalConfig  # noqa: E402
from unlearning_mock.mock_evaluator.leaderboard import ORACLE, run_leaderboard  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="ft-kaggle,fcs")
    parser.add_argument("--num-models", type=int, default=128)
    parser.add_argument("--main-seed", type=int, default=0)
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--cache-dir", default=".cache")
    parser.add_argument("--output-dir", default="outputs")
    args = parser.parse_args(argv)
    names = [n for n in args.methods.split(",") if n]
    out = Path(args.output_dir) / f"interval-check-n{args.num_models}"
    quiet = lambda *_: None  # noqa: E731

    def board(seed: int) -> pd.DataFrame:
        started = time.perf_counter()
        config = EvalConfig(num_models=args.num_models, seed=seed, cache_dir=args.cache_dir, baseline=False,
                            output_dir=str(out), run_name=f"seed{seed}", progress=False, warn_only=True)
        frame = run_leaderboard(config, names, reps=args.bootstrap, log=quiet)["frame"].set_index("method")
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
        return frame

    main_frame = board(args.main_seed)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        frame = board(seed)
        for method in [*names, ORACLE]:
            for score, low, high in (("final_score", "final_low", "final_high"), ("forget_quality", "f_low", "f_high")):
                value = float(frame.loc[method, score])
                rows.append({"method": method, "seed": seed, "score": score, "value": value,
                             "main_value": float(main_frame.loc[method, score]),
                             "main_low": float(main_frame.loc[method, low]),
                             "main_high": float(main_frame.loc[method, high]),
                             "inside": bool(main_frame.loc[method, low] <= value <= main_frame.loc[method, high])})
    coverage = pd.DataFrame(rows)
    summary = coverage.groupby(["method", "score"]).agg(
        main_value=("main_value", "first"), main_low=("main_low", "first"), main_high=("main_high", "first"),
        inside=("inside", "sum"), seeds=("inside", "size"), seed_mean=("value", "mean"),
        seed_sd=("value", lambda v: float(np.std(v, ddof=1)))).reset_index()
    # a 95% percentile interval spans about 3.92 bootstrap standard deviations
    summary["bootstrap_sd"] = (summary["main_high"] - summary["main_low"]) / 3.92
    summary["sd_ratio_bootstrap_over_seeds"] = summary["bootstrap_sd"] / summary["seed_sd"]
    out.mkdir(parents=True, exist_ok=True)
    coverage.to_csv(out / "coverage.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    inside, total = int(coverage["inside"].sum()), len(coverage)
    print(f"\n{inside} of {total} independent-seed scores ({inside / total:.0%}) fall inside the main run's 95% interval")
    print(f"written to {out}/coverage.csv and summary.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
