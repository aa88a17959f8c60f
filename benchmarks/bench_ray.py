"""The Ray executor against the local process pool on this machine: the same N unlearning runs of the kit
baseline (digits), each engine started from cold, in one run; startup included.

Prints each engine's wall time (executor start, N runs, shutdown), the ratio Ray / local (the issue's
target: <= 1.3), Ray's own start-up time (``ray.init`` of a local instance), and whether both gave the same
figures. The runs go to a scratch cache (the original model is taken from --cache-dir), so nothing cached
is reused or overwritten; no oracles are needed.
    python benchmarks/bench_ray.py [--num-models 512] [--repeats 1] [--cache-dir .cache]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from unlearning_mock.mock_evaluator.evaluate import EvalConfig, Evaluation  # noqa: E402
from unlearning_mock.mock_evaluator.engine.executors import make_executor  # noqa: E402
from unlearning_mock.mock_evaluator.method import method_from_spec  # noqa: E402


def timed_runs(kind: str, config: EvalConfig, workers: int) -> tuple[float, float, dict]:
    """(wall seconds of start + runs + close, Ray start-up seconds or 0, the figures)."""
    for folder in (Path(config.cache_dir) / "runs").glob("*"):
        shutil.rmtree(folder)
    start = time.perf_counter()
    executor = make_executor(workers, kind)
    evaluation = Evaluation(config, executor=executor, log=lambda *_: None)
    try:
        figures = evaluation.runs(method_from_spec("baseline", baseline_function=evaluation.setting.baseline))
    finally:
        executor.close()
    return time.perf_counter() - start, getattr(executor, "startup_seconds", 0.0), figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-models", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2, help="local processes (Ray uses every CPU it finds)")
    parser.add_argument("--repeats", type=int, default=1, help="alternate local and Ray this many times")
    parser.add_argument("--cache-dir", default=".cache", help="where the original model is cached")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    original = Path(args.cache_dir) / "original"
    if original.is_dir():
        shutil.copytree(original, scratch / "original")
    config = EvalConfig(num_models=args.num_models, cache_dir=str(scratch), baseline=False, submissions=(),
                        progress=False, run_timeout=600)
    walls: dict[str, list[float]] = {"local": [], "ray": []}
    startups, figures = [], {}
    try:
        for repeat in range(args.repeats):
            for kind in ("local", "ray"):
                wall, startup, figures[kind] = timed_runs(kind, config, args.workers)
                walls[kind].append(wall)
                if kind == "ray":
                    startups.append(startup)
                print(f"repeat {repeat}: {kind:5s} {wall:7.1f} s for {args.num_models} runs"
                      + (f" (ray.init {startup:.1f} s)" if kind == "ray" else ""), flush=True)
    finally:
        shutil.rmtree(scratch)
    same = all(np.array_equal(figures["local"][k], figures["ray"][k]) for k in figures["local"] if k != "seconds")
    local, ray = float(np.median(walls["local"])), float(np.median(walls["ray"]))
    print(f"N = {args.num_models} kit-baseline runs, local pool of {args.workers} processes vs a local Ray instance")
    print(f"local: {local:.1f} s, ray: {ray:.1f} s (medians of {args.repeats}); ratio ray / local = {ray / local:.2f} "
          "(target <= 1.3)")
    print(f"ray start-up (ray.init, local instance): {np.median(startups):.1f} s")
    print(f"identical figures from both engines: {same}")


if __name__ == "__main__":
    main()
