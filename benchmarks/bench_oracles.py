"""Oracle training speed: the fused (many models at once) path against the one-at-a-time loop.

Prints models/second for both, measured in the same run on the digits retain set with the digits
recipe, and their ratio. The issue's target: a ratio of at least 10x on a 2-core machine.
    python benchmarks/bench_oracles.py [--fused 128] [--single 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from unlearning_mock.starter_kit.data import load_digits_data  # noqa: E402
from unlearning_mock.starter_kit.models import SmallResNet  # noqa: E402
from unlearning_mock.starter_kit.training import DIGITS_RECIPE, train_models  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fused", type=int, default=128, help="models trained at once in the fused path")
    parser.add_argument("--single", type=int, default=3, help="models trained one at a time")
    args = parser.parse_args()
    data = load_digits_data()
    inputs, targets = data.retain
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(targets)} retain images; {DIGITS_RECIPE}")
    start = time.perf_counter()
    train_models(SmallResNet, inputs, targets, DIGITS_RECIPE, range(args.single), fuse=False)
    single = args.single / (time.perf_counter() - start)
    print(f"one at a time: {single:.3f} models/s ({1 / single:.2f} s per model)")
    start = time.perf_counter()
    train_models(SmallResNet, inputs, targets, DIGITS_RECIPE, range(args.fused), fuse=True)
    fused = args.fused / (time.perf_counter() - start)
    print(f"fused x{args.fused}:    {fused:.3f} models/s ({1 / fused:.3f} s per model)")
    print(f"speed ratio fused / one-at-a-time: {fused / single:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
