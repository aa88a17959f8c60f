"""Benchmark of the forgetting-quality metric: fast path vs the literal reference.

Synthetic logit-scaled confidences shaped like real ones: for every forget
example, the retrained models' confidences follow Normal(mu, s) with mu drawn
from [-5, 15] and s from [0.5, 3]; the unlearned models' are slightly shifted
and rescaled.  Prints the fast path's wall time for all examples, the literal
reference's time per example measured on a small subset in the same run, the
literal time extrapolated to all examples and the speed ratio.

    .venv/bin/python benchmarks/bench_metric.py [--examples 5000] [--models 512]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from literal_metric import literal_per_example_epsilons  # noqa: E402
from unlearning_mock.mock_evaluator.scoring.metric import bucket_points, per_example_epsilons  # noqa: E402


def synthetic_confidences(num_models: int, num_examples: int, seed: int):
    """(unlearned, retrained) confidences, both ``[num_models, num_examples]``."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-5.0, 15.0, num_examples)
    s = rng.uniform(0.5, 3.0, num_examples)
    retrained = rng.normal(mu, s, (num_models, num_examples))
    shift = rng.normal(0.0, 0.3, num_examples)
    scale = rng.uniform(0.8, 1.25, num_examples)
    unlearned = rng.normal(mu + shift, s * scale, (num_models, num_examples))
    return unlearned, retrained


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="forget examples M")
    parser.add_argument("--models", type=int, default=512, help="models per side N")
    parser.add_argument("--literal-examples", type=int, default=5,
                        help="examples timed with the literal reference")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    unlearned, retrained = synthetic_confidences(args.models, args.examples, args.seed)
    print(f"M = {args.examples} examples x N = {args.models} models")

    start = time.perf_counter()
    epsilons = per_example_epsilons(unlearned, retrained)
    fast_s = time.perf_counter() - start
    print(f"fast:    {fast_s:.2f} s for {args.examples} examples "
          f"({fast_s / args.examples * 1e3:.3f} ms per example)")
    quality = bucket_points(epsilons, args.models).mean()
    print(f"         forget quality F = {quality:.6f}")

    subset = slice(0, min(args.literal_examples, args.examples))
    start = time.perf_counter()
    literal = literal_per_example_epsilons(unlearned[:, subset], retrained[:, subset])
    literal_s = time.perf_counter() - start
    count = literal.size
    per_example = literal_s / count
    extrapolated = per_example * args.examples
    print(f"literal: {literal_s:.2f} s for {count} examples ({per_example:.3f} s per example), "
          f"extrapolated {extrapolated:.0f} s ({extrapolated / 3600:.2f} h) for {args.examples}")
    print(f"speed ratio (literal / fast): {extrapolated / fast_s:.0f}x")
    print(f"max |fast - literal| on the subset: {np.abs(epsilons[subset] - literal).max():.3g}")


if __name__ == "__main__":
    main()
