"""Where each registered method leaves the forget examples on digits, per seed, under this CPU's kernels.

For every reference method (``methods/``) at its defaults, on the digits original trained here (as the test
suite trains it): the growth of the retain-minus-forget confidence gap and the fall of the forget examples'
mean confidence (the challenge's logit-scaled confidence), for seeds 0..S-1 and their mean. These are the
figures behind the claims that ``tests/test_methods.py`` asserts, and what the methods without a claim there
measure. Run it under another kernel set to see how much the last bits of a CPU move them:

    python benchmarks/bench_forgetting_direction.py [--seeds 3]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/bench_forgetting_direction.py
"""

from __future__ import annotations

import argparse
import copy
import tempfile

import numpy as np
import torch

from unlearning_mock.methods.registry import METHODS, load_method
from unlearning_mock.mock_evaluator.engine.figures import logit_scaled_confidence
from unlearning_mock.starter_kit.data import load_digits_data, make_loaders
from unlearning_mock.starter_kit.evaluation import logits_on
from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.original import load_or_train_original
from unlearning_mock.starter_kit.settings import load_setting
from unlearning_mock.starter_kit.training import DIGITS_RECIPE


def mean_confidence(net, inputs, targets) -> float:
    net.eval()
    return float(logit_scaled_confidence(logits_on(net, inputs).numpy(), targets.numpy()).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..SEEDS-1 of each method's run")
    args = parser.parse_args()
    torch.set_num_threads(1)   # as every evaluator job and the test suite
    print(f"torch {torch.__version__}, kernels: {torch.backends.cpu.get_cpu_capability()}")
    digits = load_digits_data()
    with tempfile.TemporaryDirectory() as cache:
        original = load_or_train_original(digits, SmallResNet, DIGITS_RECIPE, cache_dir=cache, log=lambda *_: None)
    profile = load_setting("digits").profile

    def where(net):
        forget, retain = mean_confidence(net, *digits.forget), mean_confidence(net, *digits.retain)
        return retain - forget, forget

    gap0, forget0 = where(original)
    print(f"original: retain-minus-forget gap {gap0:.3f}, forget confidence {forget0:.3f}")
    print(f"{'method':<14} {'gap growth per seed':<24} {'mean':>6}   {'confidence drop per seed':<26} {'mean':>6}")
    for name, entry in METHODS.items():
        if not entry.module.startswith("unlearning_mock.methods."):
            continue
        unlearn, options = load_method(name)
        growth, drop = [], []
        for seed in range(args.seeds):
            net = copy.deepcopy(original)
            loaders = make_loaders(digits, seed=seed)
            torch.manual_seed(seed)
            unlearn(net, loaders.retain, loaders.forget, loaders.validation, **{**options, "profile": profile})
            gap, forget = where(net)
            growth.append(gap - gap0)
            drop.append(forget0 - forget)
        cells = lambda values: " ".join(f"{v:+.3f}" for v in values)
        print(f"{name:<14} {cells(growth):<24} {np.mean(growth):+.3f}   {cells(drop):<26} {np.mean(drop):+.3f}")


if __name__ == "__main__":
    main()
