"""What isolation costs: the kit baseline's N digits runs with every call in a child process of a pristine
worker (the local executor today: weights back through shared memory, figures computed by the worker)
against the same runs the way the previous pool ran them (call and figures in the reused worker process
itself), in one invocation, alternating, with the same workers and threads.

Prints each variant's wall time (worker start-up included), the CPU time its processes used (user + system,
every worker and call process), the mean time of one call as each measures it, and the ratios isolated /
previous (the target for the wall time: <= 1.15), after checking both give the same figures. On a
shared machine the wall time moves with the load; the CPU time much less.

    python benchmarks/bench_isolation.py [--num-models 512] [--workers 2] [--repeats 1] [--submission baseline]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unlearning_mock.mock_evaluator.engine import jobs as J  # noqa: E402
from unlearning_mock.mock_evaluator.engine.limits import Limits  # noqa: E402
from unlearning_mock.mock_evaluator.engine.local import ProcessExecutor  # noqa: E402
from unlearning_mock.mock_evaluator.evaluate import EvalConfig, Evaluation, seeds_for  # noqa: E402
from unlearning_mock.mock_evaluator.method import method_from_spec  # noqa: E402
from unlearning_mock.mock_evaluator.engine.figures import stack_figures  # noqa: E402


def _previous_worker() -> None:
    """What the previous pool's workers did before their first job."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(1)


def _children_cpu() -> float:
    """CPU seconds (user + system) of every finished and reaped descendant of this process."""
    times = os.times()
    return times.children_user + times.children_system


def isolated(jobs: list, workers: int) -> list:
    executor = ProcessExecutor(workers, threads=1)
    try:
        return list(executor.map_unordered(jobs))
    finally:
        executor.close()


def previous(jobs: list, workers: int) -> list:
    """The previous pool: each job's call and figures in a reused spawned worker (no child, no limits)."""
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_previous_worker) as pool:
        return list(zip(jobs, pool.map(J.run_job_here, jobs, chunksize=1)))


def figures(pairs: list) -> dict:
    ordered = sorted(pairs, key=lambda pair: pair[0].slot)
    assert all(result.error is None for _, result in ordered), [r.error for _, r in ordered if r.error][:3]
    return {**stack_figures([r.figures[0] for _, r in ordered]), "seconds": np.array([r.seconds[0] for _, r in ordered])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-models", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--submission", default="baseline", help="the method whose calls are run (default: the kit "
                                                                     "baseline; e.g. submission.unlearning)")
    parser.add_argument("--cache-dir", default=None, help="default: the evaluator's cache folder")
    args = parser.parse_args()
    config = EvalConfig(num_models=max(2, args.num_models), cache_dir=args.cache_dir, progress=False, submissions=())
    evaluation = Evaluation(config, log=lambda *_: None)   # the original model (trained once, cached)
    method = method_from_spec(args.submission, baseline_function=evaluation.setting.baseline)
    seeds = seeds_for(0, "unlearning", args.num_models)
    jobs = [J.UnlearningJob(evaluation.context, method, i, (seeds[i],), Limits()) for i in range(args.num_models)]
    print(f"load before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", flush=True)
    walls: dict[str, list[float]] = {"isolated": [], "previous": []}
    cpus: dict[str, list[float]] = {"isolated": [], "previous": []}
    results = {}
    for repeat in range(args.repeats):
        for name, run in (("previous", previous), ("isolated", isolated)) if repeat % 2 else \
                         (("isolated", isolated), ("previous", previous)):
            start, used = time.perf_counter(), _children_cpu()
            results[name] = figures(run(jobs, args.workers))
            walls[name].append(time.perf_counter() - start)
            cpus[name].append(_children_cpu() - used)  # the workers (and their calls) are ended and reaped by now
            print(f"{name:9s} repeat {repeat}: {walls[name][-1]:7.1f} s wall, {cpus[name][-1]:7.1f} s CPU, one call "
                  f"{results[name]['seconds'].mean():.3f} s (mean, as measured by each)", flush=True)
    same = all(np.array_equal(results["isolated"][k], results["previous"][k]) for k in results["isolated"] if k != "seconds")
    ratio = float(np.median(walls["isolated"]) / np.median(walls["previous"]))
    cpu_ratio = float(np.median(cpus["isolated"]) / np.median(cpus["previous"]))
    print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"\n{args.num_models} {method.name} runs on digits, {args.workers} workers x 1 thread, median of {args.repeats}: "
          f"wall isolated {np.median(walls['isolated']):.1f} s, previous pool {np.median(walls['previous']):.1f} s, "
          f"ratio {ratio:.3f} (target <= 1.15); CPU isolated {np.median(cpus['isolated']):.1f} s, previous "
          f"{np.median(cpus['previous']):.1f} s, ratio {cpu_ratio:.3f}; identical figures: {same}")


if __name__ == "__main__":
    main()
