"""Probe for issue #18: which one learning-rate rule keeps the reference methods from breaking the model on a
small-batch setting (mnist-groups: the loaders give batches of 4 where every method was published at 64).

For every registered method and every candidate factor (all of a method's learning rates -- options whose name
holds ``lr`` -- times the factor; epochs by the setting's rule as always), ``--runs`` unlearning calls from the
setting's cached original, each with its own loaders' seed, and the returned model's retain, forget and test
accuracy. No oracle and no score is computed: a rule is chosen on the models' health alone, on seeds that are not
the evaluation's (runs use seeds 1000 + i; the leaderboard's models use the evaluation seed's).

    .venv/bin/python benchmarks/probes/lr_rule.py --cache-dir /work/cache_groups --runs 3 --output lr_rule.csv

The figures are in benchmarks/RESULTS.md ("mnist-groups: the learning-rate rule").
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import pandas as pd
import torch

from unlearning_mock.methods.registry import load_method, method_names
from unlearning_mock.methods.settings import tuned_lrs
from unlearning_mock.mock_evaluator.method import call_keywords
from unlearning_mock.starter_kit.data import make_loaders
from unlearning_mock.starter_kit.evaluation import accuracy
from unlearning_mock.starter_kit.original import setting_original
from unlearning_mock.starter_kit.settings import load_setting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist-groups")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--factors", default="1,0.25,0.0625")
    parser.add_argument("--methods", default=None, help="comma-separated ids (default: every registered method)")
    parser.add_argument("--output", default="lr_rule.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)

    setting = load_setting(args.dataset)
    profile = setting.profile
    original = setting_original(setting, cache_dir=args.cache_dir).model
    reference = make_loaders(setting.data, setting.batch_size, seed=0, dict_batches=setting.dict_batches)
    rows = [dict(method="original", factor=np.nan, run=0, seconds=0.0,
                 **{part: accuracy(original, getattr(reference, part)) for part in ("retain", "forget", "test")})]
    print(rows[0], flush=True)
    names = args.methods.split(",") if args.methods else method_names()
    for name in names:
        function, options = load_method(name)
        for factor in [float(f) for f in args.factors.split(",")]:
            lrs = tuned_lrs(profile.defaults(function.published), factor)
            for run in range(args.runs):
                seed = 1000 + run
                loaders = make_loaders(setting.data, setting.batch_size, seed=seed, dict_batches=setting.dict_batches)
                torch.manual_seed(seed)
                net = copy.deepcopy(original).train()
                start = time.perf_counter()
                net = function(net, loaders.retain, loaders.forget, loaders.validation,
                               **call_keywords(function, {**options, **lrs}, profile))
                seconds = time.perf_counter() - start
                net.eval()
                row = dict(method=name, factor=factor, run=run, seconds=seconds,
                           **{part: accuracy(net, getattr(reference, part)) for part in ("retain", "forget", "test")})
                rows.append(row)
                print(row, flush=True)
            pd.DataFrame(rows).to_csv(args.output, index=False)
    table = pd.DataFrame(rows).groupby(["method", "factor"], dropna=False)[["retain", "forget", "test", "seconds"]].mean()
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
