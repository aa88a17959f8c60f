"""The ``tune`` subcommand's own flags and its run (the flags it shares with ``evaluate`` are :mod:`mock_evaluator.cli`'s).

In ``tune``, ``--seed`` is the *evaluation* seed the tuned options will be scored on (it is never tuned on) and
``--tuning-seed`` the seed of every trial; ``--num-models`` is the tuning N (default 32) and ``--eval-num-models``
the N of the printed evaluation command (512).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from unlearning_mock.mock_evaluator.evaluate import DEFAULT_SUBMISSION, EvalConfig
from unlearning_mock.mock_evaluator.tune import (EVALUATION_MODELS, TRIALS, TUNING_MODELS, TUNING_SEED, TuneRequest,
                                                 registry_request, run_tune)
from unlearning_mock.mock_evaluator.tune_space import parse_dimension

NO_FEASIBLE_TRIAL = 1   # the exit code when every trial was over the time budget or failed


def add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags only ``tune`` has; its defaults of the shared ones (N = 32)."""
    parser.add_argument("--method", default=None,
                        help="a registered method to tune (methods/registry.py: fcs, msg, srfl-submitted, ...), "
                             "instead of --submission")
    parser.add_argument("--trials", type=int, default=TRIALS, help="trials of the study in all, resumed ones counted")
    parser.add_argument("--tuning-seed", type=int, default=TUNING_SEED,
                        help="the seed of every trial (its own oracles and runs); must differ from --seed")
    parser.add_argument("--eval-num-models", type=int, default=EVALUATION_MODELS,
                        help="N of the printed command that evaluates the best options on --seed")
    parser.add_argument("--space", action="append", default=[], metavar="NAME=LOW:HIGH[:log][:int]",
                        help="replace or add the range of one option (repeatable), e.g. --space lr=1e-4:1e-1:log")
    parser.add_argument("--only", default=None, help="comma-separated options: search these only (the rest fixed "
                                                     "at their defaults)")
    parser.add_argument("--record", default=None, metavar="FILE",
                        help="write the best options with their provenance into this tuned-options file (e.g. "
                             "methods/tuned/mnist-groups.json, read by leaderboard --tuned); --method only")
    parser.set_defaults(num_models=TUNING_MODELS)


def tune_request(args) -> TuneRequest:
    """The study that ``args`` ask for (one method: ``--method`` or one ``--submission``)."""
    entries = args.submissions or []
    fields = dict(trials=args.trials, evaluation_seed=args.seed, evaluation_models=args.eval_num_models,
                  overrides=tuple(parse_dimension(text) for text in args.space),
                  only=tuple(n.strip() for n in args.only.split(",") if n.strip()) if args.only else (),
                  record=args.record)
    if args.method:
        # --submission-option before any --submission makes an entry of the default submission: here, the method's
        if any(spec != DEFAULT_SUBMISSION for spec, _, _ in entries):
            raise ValueError("tune one method: --method NAME or --submission FILE, not both")
        options = {key: value for _, given, _ in entries for key, value in given.items()}
        return registry_request(args.method, options, **fields)
    if len(entries) != 1:
        raise ValueError("tune one method: give --method NAME or exactly one --submission FILE (with the "
                         "--submission-option values to keep fixed)")
    spec, options, batches = entries[0]
    return TuneRequest(spec=spec, options=dict(options), batches=batches, **fields)


def tune_main(args, config: EvalConfig) -> int:
    """Run the study ``args`` ask for with ``config`` (the shared flags); 0, or 1 when no trial was feasible."""
    request = tune_request(args)
    result = run_tune(replace(config, seed=args.tuning_seed, baseline=False), request)
    if result.best_options is None:
        print("no feasible options: widen the time budget (--time-budget) or narrow the epochs (--space)",
              file=sys.stderr)
        return NO_FEASIBLE_TRIAL
    return 0
