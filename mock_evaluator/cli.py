"""The command line: ``unlearning-mock [SUBCOMMAND] [options]`` (also ``python -m mock_evaluator`` in a clone).

Subcommands: ``evaluate`` (the default: score submissions like the challenge), ``leaderboard`` (every registered
method side by side; ``--tuned`` with tuned rows), ``tune`` (an Optuna study of one method's options on a tuning
seed), ``score-zip`` (a Kaggle submission.zip of checkpoints), ``package`` (the Kaggle notebook
from a method file), ``mock-kaggle-input`` (the competition's folder layout made from digits), ``curve`` (per-step
forget/retain accuracy of SRFL or ALIF), ``methods`` (the registered methods). ``unlearning-mock SUBCOMMAND --help``
lists each one's options.
"""

from __future__ import annotations

import argparse
import sys

from unlearning_mock.mock_evaluator.evaluate import (DEFAULT_SUBMISSION, ORACLE_CHUNK, EvalConfig, Evaluation,
                                                     EvaluationOutcome, SubmissionError)
from unlearning_mock.mock_evaluator.engine.executors import EXECUTORS, executors_help
from unlearning_mock.mock_evaluator.engine.limits import MEMORY_FRACTION, parse_memory
from unlearning_mock.mock_evaluator.engine.protocol import EvaluatorFailure
from unlearning_mock.mock_evaluator.method import parse_option
from unlearning_mock.mock_evaluator.reports.report import format_table, write_outputs
from unlearning_mock.mock_evaluator.setting_flags import add_setting_flags, setting_flag_values
from unlearning_mock.starter_kit.batch_format import BATCH_FORMATS
from unlearning_mock.starter_kit.conv_backend import CHOICES as CONV_BACKENDS, default_choice
from unlearning_mock.starter_kit.settings import DATASETS, DEFAULT_DATASET

EXIT_OVER_BUDGET = 1
EXIT_BAD_INPUT = 2
EXIT_EVALUATOR_FAILED = 3   # the evaluator or its engine failed, not a submission
EXIT_INTERRUPTED = 130   # the shell's code for Ctrl-C


class _SubmissionAction(argparse.Action):
    """``--submission SPEC`` starts a new method ``[spec, options, batch format]``; ``--submission-option k=v`` and
    ``--batches FORMAT`` belong to the last one (before any ``--submission``: to the default submission)."""

    def __call__(self, parser, namespace, value, option_string=None):
        entries = getattr(namespace, "submissions", None) or []
        if option_string == "--submission":
            entries.append([value, {}, None])
            namespace.submissions = entries
            return
        if not entries:
            entries.append([DEFAULT_SUBMISSION, {}, None])
        if option_string == "--batches":
            entries[-1][2] = value
        else:
            try:
                key, parsed = parse_option(value)
            except ValueError as error:
                parser.error(str(error))
            entries[-1][1][key] = parsed
        namespace.submissions = entries


PROG = "unlearning-mock"
DESCRIPTIONS = {
    "evaluate": "Score unlearning functions the way the NeurIPS 2023 Machine Unlearning Challenge did: N unlearned "
                "copies of one original model against N models retrained from scratch. Other subcommands: "
                "leaderboard, tune, score-zip, package, mock-kaggle-input, curve, methods (each with --help); "
                "--version.",
    "score-zip": "Score a Kaggle-style submission.zip of unlearned checkpoints.",
    "leaderboard": "Score every registered method (`unlearning-mock methods` lists them) side by side against the "
                   "same oracles, with bootstrap intervals and rank agreement with the challenge's private "
                   "leaderboard.",
    "tune": "Tune one method's options with an Optuna study: each trial an evaluation at a small N on a tuning seed "
            "with its own oracles, the objective the final score, a trial over the time budget infeasible. Resumable "
            "(the study lives under the cache); prints the best options and the command that evaluates them at "
            "N = 512 on the evaluation seed (--seed), which is never tuned on. See docs/tuning.md.",
}
SCORING_MODES = ("evaluate", "score-zip", "leaderboard", "tune")
TOOLS = ("package", "mock-kaggle-input", "curve", "methods")


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as installed_version

    try:
        return installed_version("unlearning-mock")
    except PackageNotFoundError:  # run from a clone that was never installed
        return "unknown (not installed: pip install -e .)"


def _parser(mode: str) -> argparse.ArgumentParser:
    score_zip = mode == "score-zip"
    parser = argparse.ArgumentParser(prog=PROG + (f" {mode}" if mode != "evaluate" else ""),
                                     description=DESCRIPTIONS[mode])
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    if score_zip:
        parser.add_argument("zip", help="the submission.zip written by the notebook")
    elif mode == "leaderboard":
        parser.add_argument("--methods", default=None,
                            help="comma-separated registry names (default: every registered method)")
        parser.add_argument("--bootstrap", type=int, default=100, help="paired-bootstrap replicates for the intervals")
        parser.add_argument("--tuned", nargs="?", const="", default=None, metavar="FILE",
                            help="add a tuned row beside each method with tuned options for the setting (FILE, "
                                 "default: the repository's methods/tuned/DATASET.json; see docs/tuning.md)")
    else:
        parser.add_argument("--submission", action=_SubmissionAction, dest="submissions", default=None,
                            help="a .py file or a Jupyter/Kaggle notebook (.ipynb) defining unlearning(net, retain_loader, "
                                 "forget_loader, validation_loader), a module of the tool (submission.alif, methods.fcs) "
                                 "or 'baseline'; repeat it to score several methods against the same oracles (default: "
                                 f"SRFL, {DEFAULT_SUBMISSION})")
        parser.add_argument("--submission-option", action=_SubmissionAction, dest="submissions", metavar="KEY=VALUE",
                            help="a keyword option for the --submission before it (value: a Python literal, else a "
                                 "string); repeatable, e.g. --submission-option lr=0.02 --submission-option variant=seed")
        parser.add_argument("--batches", action=_SubmissionAction, dest="submissions", choices=BATCH_FORMATS,
                            help="what the loaders of the --submission before it yield: 'kaggle', the challenge's dicts "
                                 "(batch['image'], batch['age_group'], ...), or 'tuples', (inputs, targets) pairs "
                                 "(default: the setting's own -- tuples, dicts on the kaggle layout)")
    parser.add_argument("--num-models", type=int, default=512, help="N: unlearned copies and retrained oracles per set (challenge: 512)")
    parser.add_argument("--dataset", choices=DATASETS, default=DEFAULT_DATASET if not score_zip else "kaggle")
    parser.add_argument("--data-dir", default=None, help="folder of the cifar10 or kaggle data")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--seed", type=int, default=0,
                        help="base seed of every model's seed" if mode != "tune" else
                        "the evaluation seed the tuned options are scored on (never tuned on; see --tuning-seed)")
    parser.add_argument("--output-dir", default="outputs", help="reports go to OUTPUT_DIR/RUN_NAME/")
    parser.add_argument("--run-name", default=None,
                        help="default: DATASET-SUBMISSION-nN-seedS (leaderboard: leaderboard-DATASET-nN-seedS)")
    parser.add_argument("--cache-dir", default=None,
                        help="the original model, oracles and finished runs (default: $UNLEARNING_CACHE_DIR, else "
                             "$XDG_CACHE_HOME/unlearning-mock or ~/.cache/unlearning-mock)")
    parser.add_argument("--time-budget", type=float, default=0.2,
                        help="largest allowed mean unlearning time as a fraction of one retrain (challenge: about 0.2)")
    parser.add_argument("--warn-only", action="store_true", help="over budget: warn, but exit 0")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: 2 on a CPU, 1 on a GPU)")
    parser.add_argument("--run-timeout", type=float, default=None, metavar="SECONDS",
                        help="stop an unlearning run that takes longer and report it as the submission's failure "
                             "(default: 10 x the budgeted time of a run, i.e. 10 x TIME_BUDGET x the retrain time "
                             "measured in the run, at least 60 s)")
    parser.add_argument("--run-memory", type=_memory, default=None, metavar="SIZE",
                        help="memory one unlearning call may allocate, with a unit (2GB, 512MB, 1.5GiB); past it the "
                             f"call fails with an out-of-memory error naming the model (default: 1/{MEMORY_FRACTION} "
                             "of this machine's memory)")
    parser.add_argument("--executor", choices=tuple(EXECUTORS), default="local", help=executors_help())
    parser.add_argument("--ray-address", default=None,
                        help="--executor ray: the cluster to join (default: $RAY_ADDRESS if set, else a local instance)")
    parser.add_argument("--gpus-per-job", type=float, default=0.0,
                        help="--executor ray: GPUs each job reserves; a fraction (0.25) lets jobs share a GPU")
    parser.add_argument("--oracle-chunk", type=lambda v: v if v == "auto" else int(v), default=ORACLE_CHUNK,
                        help="oracles (and kit-baseline runs) trained at once as one fused network: a number, or "
                             "'auto' (default: CPU 128 small models or 8 ResNet-18s; CUDA what fits 80%% of free "
                             "memory, at most 64; at most N / 2, so that two workers get a chunk each); part of the "
                             "oracles' cache key")
    parser.add_argument("--conv-backend", choices=CONV_BACKENDS, default=default_choice(),
                        help="CPU convolutions: 'auto' measures oneDNN and PyTorch's native code for one-model work "
                             "(every unlearning call, the timing retrain, the original) and for fused work (oracles, "
                             "the fused baseline) on this machine, once (cached), and keeps the faster for each; "
                             "'onednn' or 'native' forces one for all (default: $UNLEARNING_CONV_BACKEND, else auto). "
                             "Part of the cache keys")
    parser.add_argument("--attack-models", type=int, default=32, help="models per method that the kit's attack is run on")
    parser.add_argument("--no-baseline", action="store_true", help="skip the starter kit's fine-tuning baseline")
    add_setting_flags(parser)
    parser.add_argument("--amp", action="store_true",
                        help="CUDA: train the original and the oracles with bf16 autocast (logits stay float32)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    if mode == "tune":
        from unlearning_mock.mock_evaluator.tune_cli import add_tune_arguments

        add_tune_arguments(parser)
    return parser


def _memory(text: str) -> int:
    try:
        return parse_memory(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _config(args, submissions) -> EvalConfig:
    options = {**setting_flag_values(args), **({"amp": True} if args.amp else {})}
    return EvalConfig(dataset=args.dataset, data_dir=args.data_dir, setting_options=options,
                      submissions=tuple((spec, dict(opts), batches) for spec, opts, batches in submissions),
                      oracle_chunk=args.oracle_chunk,
                      num_models=args.num_models, seed=args.seed, device=args.device, output_dir=args.output_dir,
                      run_name=args.run_name, cache_dir=args.cache_dir, time_budget=args.time_budget,
                      warn_only=args.warn_only, workers=args.workers, attack_models=args.attack_models,
                      baseline=not args.no_baseline, progress=not args.quiet, run_timeout=args.run_timeout,
                      run_memory=args.run_memory,
                      executor=args.executor, ray_address=args.ray_address, gpus_per_job=args.gpus_per_job,
                      conv_backend=args.conv_backend)


def _run_tool(name: str, argv: list[str]) -> int:
    """The non-scoring subcommands: each module's own command line, under this program's name."""
    if name == "package":
        from unlearning_mock.mock_evaluator.kaggle.notebook import main as tool
    elif name == "mock-kaggle-input":
        from unlearning_mock.mock_evaluator.kaggle.mock_input import main as tool
    elif name == "methods":
        from unlearning_mock.methods.registry import main as tool
    else:
        from unlearning_mock.mock_evaluator.studies.curve import main as tool
    return tool(argv, prog=f"{PROG} {name}") or 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    mode = argv[0] if argv and argv[0] in SCORING_MODES + TOOLS else "evaluate"
    if argv and argv[0] == mode:
        argv = argv[1:]
    if mode in TOOLS:
        return _run_tool(mode, argv)
    score_zip = mode == "score-zip"
    args = _parser(mode).parse_args(argv)
    from unlearning_mock.mock_evaluator.scoring.metric import num_buckets

    if args.num_models >= 2 and num_buckets(args.num_models) <= 2:
        print(f"note: with N = {args.num_models} the metric has only {num_buckets(args.num_models)} ε bucket(s), "
              "so every example scores (almost) 0 points; use N >= 8 for a meaningful forget quality", file=sys.stderr)
    if mode == "leaderboard":
        return _leaderboard(args)
    if mode == "tune":
        from unlearning_mock.mock_evaluator.tune_cli import tune_main

        try:
            return tune_main(args, _config(args, submissions=()))
        except RUN_ENDERS as error:
            return _ended(error)
    try:
        if score_zip:
            config = _config(args, submissions=())
            evaluation = Evaluation(config, checkpoint_zip=args.zip)
        else:
            config = _config(args, submissions=args.submissions or [[DEFAULT_SUBMISSION, {}, None]])
            evaluation = Evaluation(config)
        outcome = evaluation.run()
    except RUN_ENDERS as error:
        return _ended(error)
    return report_and_exit_code(outcome, evaluation, config)


RUN_ENDERS = (SubmissionError, EvaluatorFailure, ValueError, FileNotFoundError, KeyboardInterrupt)
"""What ends a run (an evaluation or a leaderboard) early: :func:`_ended` says which, with its exit code."""


def _ended(error: BaseException) -> int:
    """Print why ``error`` (one of :data:`RUN_ENDERS`) ended the run, in words that blame the right party; its exit
    code."""
    if isinstance(error, KeyboardInterrupt):
        print("\nINTERRUPTED: the workers are stopped and every finished model is saved in the cache; run the same "
              "command again to continue from there.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(error, EvaluatorFailure):
        print(f"\nEVALUATOR ERROR: {error}", file=sys.stderr)
        return EXIT_EVALUATOR_FAILED
    label = "SUBMISSION ERROR" if isinstance(error, SubmissionError) else "ERROR"
    print(f"\n{label}: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT


def report_and_exit_code(outcome: EvaluationOutcome, evaluation: Evaluation, config: EvalConfig) -> int:
    """Write the outputs, print the table; exit 2 if any asked-for method failed, else 1 if any is over
    budget (0 with --warn-only), else 0."""
    results = outcome.results()
    for name, message in results["failures"].items():
        print(f"\nSUBMISSION ERROR: {message}", file=sys.stderr)
    folder = evaluation.report_folder()
    scored = [m for m in evaluation.methods if m.name in results["methods"]]
    if scored:
        written = write_outputs(results, outcome.oracle_confidences, folder)
        print()
        print(format_table(results, config.time_budget))
        print(f"\none ordinary retrain: {results['retrain_seconds']:.2f} s (timed in this run, with every worker busy; "
              f"time_fraction is relative to it and moves a little from run to run); oracle reference = exact "
              f"retraining scored against the oracles at N = {config.num_models}")
        print(f"results written to {folder}/ ({', '.join(p.name for p in written)})")
    if results["failures"]:
        return EXIT_BAD_INPUT
    over = [results["methods"][m.name] for m in evaluation.submissions if results["methods"][m.name].over_budget]
    for score in over:
        print(f"\n{score.name} is OVER the time budget: mean {score.time_fraction:.3f} of a retrain "
              f"> {config.time_budget} (the challenge rejected such submissions).", file=sys.stderr)
    if over and not config.warn_only:
        return EXIT_OVER_BUDGET
    return 0


def _leaderboard(args) -> int:
    from unlearning_mock.mock_evaluator.leaderboard import run_leaderboard
    from unlearning_mock.mock_evaluator.reports.leaderboard_report import format_leaderboard, rank_sentence

    try:
        config = _config(args, submissions=())
        names = [name.strip() for name in args.methods.split(",") if name.strip()] if args.methods else None
        if args.tuned is None:
            outcome = run_leaderboard(config, names, reps=args.bootstrap)
        else:
            from unlearning_mock.mock_evaluator.tuned_leaderboard import run_tuned_leaderboard

            outcome = run_tuned_leaderboard(config, names, args.tuned or None, reps=args.bootstrap)
    except RUN_ENDERS as error:
        return _ended(error)
    print()
    print(format_leaderboard(outcome["frame"]))
    if "kendall_tau" in outcome["ranks"]:
        print("\n" + rank_sentence(outcome["ranks"]))
    if "comparison" in outcome:
        from unlearning_mock.mock_evaluator.reports.tuned_report import format_comparison

        print("\npublished and tuned options side by side:\n" + format_comparison(outcome["comparison"]))
        print(outcome["budget"])
        print("With each method at its tuned options: " + rank_sentence(outcome["tuned_ranks"]))
    print(f"written to {outcome['folder']}/ ({', '.join(p.name for p in outcome['paths'])})")
    for name, message in outcome["failures"].items():
        print(f"\nFAILED: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT if outcome["failures"] else 0
