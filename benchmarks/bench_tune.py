"""What one trial of ``unlearning-mock tune`` costs: a typical method at N = 32 on mnist-groups, oracles cached.

Runs the study's own trial code (:class:`mock_evaluator.tune.Objective`) once, at the method's defaults (the point
every study starts from), after removing that point's runs from the cache so that they are measured, not loaded.
Prints, with ``uptime``: the tuning seed's oracles (trained once per seed and N, then cached: run the benchmark twice
to see the cached case), the timing retrain (once per run of the command), and the trial (target: at most 1 minute, so a
30-trial study fits in 30 minutes).

    .venv/bin/python benchmarks/bench_tune.py                      # msg, N = 32, mnist-groups, tuning seed 1
    .venv/bin/python benchmarks/bench_tune.py --method fcs --num-models 32
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time

from optuna import TrialPruned
from optuna.trial import FixedTrial

from unlearning_mock.mock_evaluator.evaluate import EvalConfig
from unlearning_mock.mock_evaluator.method import method_from_spec
from unlearning_mock.mock_evaluator.tune import TUNING_MODELS, TUNING_SEED, Objective, prepare, registry_request
from unlearning_mock.mock_evaluator.tune_space import start_point

TARGET_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="msg", help="a registered method (default: msg, a published winner)")
    parser.add_argument("--dataset", default="mnist-groups")
    parser.add_argument("--num-models", type=int, default=TUNING_MODELS)
    parser.add_argument("--tuning-seed", type=int, default=TUNING_SEED)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    config = EvalConfig(dataset=args.dataset, num_models=args.num_models, seed=args.tuning_seed, baseline=False,
                        workers=args.workers, cache_dir=args.cache_dir, progress=False)
    request = registry_request(args.method, trials=1)
    evaluation, _, entry, space = prepare(config, request, log=lambda *_: None)
    try:
        t = time.perf_counter()
        oracle_a = evaluation.oracles("oracle-A")
        oracles = time.perf_counter() - t
        t = time.perf_counter()
        retrain = evaluation.retrain_seconds()
        timing = time.perf_counter() - t
        point = start_point(entry, space)
        method = method_from_spec(request.spec, {**request.options, **point}, batches=request.batches)
        shutil.rmtree(evaluation.runs_folder(method), ignore_errors=True)
        workers = evaluation.executor.workers
        t = time.perf_counter()
        try:
            outcome = f"score {Objective(evaluation, request, space, oracle_a, retrain, 0, log=print)(FixedTrial(point)):.4f}"
        except TrialPruned:
            outcome = "infeasible (over the time budget)"
        trial = time.perf_counter() - t
    finally:
        evaluation.close()
    print(f"\n{args.dataset}, N = {args.num_models}, tuning seed {args.tuning_seed}, {workers} "
          f"workers: oracles {oracles:.1f} s (once per seed and N; cached after), timing retrain {timing:.1f} s "
          f"(once per run; one retrain {retrain:.2f} s)")
    print(f"one trial of {args.method} at its defaults: {trial:.1f} s (target <= {TARGET_SECONDS:.0f} s: "
          f"{'met' if trial <= TARGET_SECONDS else 'NOT met'}), {outcome}; a 30-trial study about "
          f"{30 * trial / 60:.0f} min")


if __name__ == "__main__":
    main()
