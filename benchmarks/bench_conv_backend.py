"""Per-step time of both CPU convolution backends (oneDNN, native), for one-model, fused and figures work, in one run.

What the evaluator measures to choose a backend per kind of work (:mod:`starter_kit.conv_backend`), with more
rounds and printed: a training step of one ordinary model at the loaders' batch (every unlearning call, the timing
retrain, the original), of the oracle chunk fused into one grouped network at the recipe's batch (the oracles, the
fused baseline), and one model's logits on an evaluation batch (every unlearned model's figures), at one torch
thread as every job runs, the backends interleaved so a change of load hits both; then whole pieces with each
backend: one Kaggle-sample fine-tune call, one epoch of a fused chunk, one model's figures.

    .venv/bin/python benchmarks/bench_conv_backend.py [--dataset mnist-groups] [--rounds 7]
"""

from __future__ import annotations

import argparse
import subprocess
import time
from dataclasses import replace

import torch

from unlearning_mock.mock_evaluator.engine.figures import model_figures
from unlearning_mock.starter_kit import conv_backend as cb
from unlearning_mock.starter_kit.data import make_loaders
from unlearning_mock.starter_kit.evaluation import EVAL_BATCH
from unlearning_mock.starter_kit.settings import DEFAULT_DATASET, load_setting
from unlearning_mock.starter_kit.training import CPU_ORACLE_CHUNK, train_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    parser.add_argument("--chunk", type=int, default=CPU_ORACLE_CHUNK["small"], help="models fused at once")
    parser.add_argument("--rounds", type=int, default=7, help="measurements of each backend per kind, interleaved")
    parser.add_argument("--seconds", type=float, default=0.5, help="about how long one measurement runs")
    parser.add_argument("--no-pieces", action="store_true", help="skip the whole fine-tune call and fused epoch")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"torch {torch.__version__}, 1 thread, {cb.processor_name()}")
    setting = load_setting(args.dataset)
    chosen, medians = cb.choose(cb.setting_measure(setting, args.chunk, seconds=args.seconds), rounds=args.rounds)
    shapes = {"one_model": f"train 1 model, batch {setting.batch_size}",
              "fused": f"train {args.chunk} fused, batch {setting.recipe.batch_size}",
              "figures": f"logits of 1 model, {EVAL_BATCH} images"}
    print(f"\n{args.dataset}: median ms per training step over {args.rounds} interleaved measurements")
    print(f"{'kind':<10} {'work':<32} {'onednn':>9} {'native':>9}  onednn/native  faster")
    for kind in cb.KINDS:
        one, native = (1e3 * medians[kind][b] for b in cb.BACKENDS)
        print(f"{kind:<10} {shapes[kind]:<32} {one:9.3f} {native:9.3f}  {one / native:13.2f}  {getattr(chosen, kind)}")
        if kind == "fused":
            print(f"{'':<10} {'(per model)':<32} {one / args.chunk:9.3f} {native / args.chunk:9.3f}")
    if args.no_pieces:
        return
    loaders = make_loaders(setting.data, setting.batch_size, seed=0)
    one_epoch = replace(setting.recipe, epochs=1, best_validation_from=None)
    print("\nwhole pieces (wall seconds; one after the other, so load changes show between them):")
    for backend in cb.BACKENDS:
        with cb.using(backend):
            net = setting.make_model()
            setting.baseline(net, *loaders[:3])                         # warm-up
            start = time.perf_counter()
            setting.baseline(net, *loaders[:3])
            call = time.perf_counter() - start
            start = time.perf_counter()
            train_models(setting.make_model, *setting.data.retain, one_epoch, list(range(args.chunk)))
            epoch = time.perf_counter() - start
            start = time.perf_counter()
            model_figures(net, setting.data)
            figures = time.perf_counter() - start
        print(f"  {backend:<7} one baseline call ({len(loaders.retain)} steps): {call:6.2f} s   one epoch of "
              f"{args.chunk} fused models: {epoch:6.2f} s ({epoch / args.chunk * 1e3:.1f} ms a model)   "
              f"one model's figures: {figures * 1e3:.0f} ms")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
