"""What one N = 512 evaluation of a setting costs, from small measured pieces (CPU seconds and wall seconds).

Measures, with one torch thread (as one of the evaluator's two worker processes runs): one epoch of a fused
chunk of oracles (per model), one Kaggle-sample fine-tune run (the evaluator's baseline row), and one
ordinary retrain's epoch; then projects the cold ``make evaluate`` (original + 2 x N oracles + N baseline
runs + N SRFL runs at ``--srfl-fraction`` of a retrain) and the per-method cost of a leaderboard, on two
workers. CPU seconds are less sensitive than wall seconds to what else runs on the machine (not immune:
cache and memory contention inflate them too), so both are printed, with ``uptime``.

    .venv/bin/python benchmarks/bench_setting_cost.py --dataset mnist-groups
"""

from __future__ import annotations

import argparse
import subprocess
import time
from dataclasses import replace

import torch

from unlearning_mock.starter_kit.baseline import kaggle_sample_unlearning
from unlearning_mock.starter_kit.data import make_loaders
from unlearning_mock.starter_kit.settings import load_setting
from unlearning_mock.starter_kit.training import CPU_ORACLE_CHUNK, train_models


def clocked(function) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist-groups")
    parser.add_argument("--num-models", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=CPU_ORACLE_CHUNK["small"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--srfl-fraction", type=float, default=0.1,
                        help="SRFL's run time as a fraction of one retrain (its default's measured time fraction)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    setting = load_setting(args.dataset)
    data, recipe = setting.data, setting.recipe
    one_epoch = replace(recipe, epochs=1, best_validation_from=None)
    retain = data.retain
    wall, cpu = clocked(lambda: train_models(setting.make_model, *retain, one_epoch, list(range(args.chunk))))
    oracle = (wall / args.chunk * recipe.epochs, cpu / args.chunk * recipe.epochs)
    print(f"oracle (fused x{args.chunk}, {recipe.epochs} epochs): {oracle[0]:.3f} s wall, {oracle[1]:.3f} s CPU per model")
    net = setting.make_model()
    loaders = make_loaders(data, setting.batch_size, seed=0)
    kaggle_sample_unlearning(net, *loaders[:3])                     # warm-up
    run = clocked(lambda: kaggle_sample_unlearning(net, *loaders[:3]))
    print(f"baseline run (1 epoch, {len(loaders.retain)} steps): {run[0]:.3f} s wall, {run[1]:.3f} s CPU")
    epoch = clocked(lambda: train_models(setting.make_model, *retain, one_epoch, [0], fuse=False))
    retrain = (epoch[0] * recipe.epochs, epoch[1] * recipe.epochs)
    print(f"one ordinary retrain ({recipe.epochs} epochs, one at a time): {retrain[0]:.1f} s wall, {retrain[1]:.1f} s CPU; "
          f"baseline time fraction {run[1] / retrain[1]:.3f} (CPU)")
    n, w = args.num_models, args.workers
    for label, k in (("wall", 0), ("CPU", 1)):
        oracles = 2 * n * oracle[k] / w
        runs = n * (run[k] + args.srfl_fraction * retrain[k]) / w
        print(f"projected cold make evaluate, N = {n}, {w} workers ({label} clock): {(oracles + runs) / 60:.1f} min "
              f"(oracles {oracles / 60:.1f}, baseline + SRFL runs {runs / 60:.1f}); leaderboard: "
              f"{n * retrain[k] / w / 60:.1f} min per method per 1.0 of a retrain "
              f"(e.g. 20 methods at 0.1 each: {2 * n * retrain[k] / w / 60:.1f} min)")


if __name__ == "__main__":
    main()
