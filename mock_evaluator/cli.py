"""Command line: ``python -m mock_evaluator [options]`` and ``python -m mock_evaluator score-zip ZIP [options]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mock_evaluator.evaluate import EvalConfig, Evaluation, SubmissionError
from mock_evaluator.report import format_table, write_outputs
from starter_kit.settings import DATASETS

EXIT_OVER_BUDGET = 1
EXIT_BAD_INPUT = 2


def _parser(score_zip: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mock_evaluator" + (" score-zip" if score_zip else ""),
        description=("Score a Kaggle-style submission.zip of unlearned checkpoints" if score_zip else
                     "Score an unlearning function the way the NeurIPS 2023 Machine Unlearning Challenge did: "
                     "N unlearned copies of one original model against N models retrained from scratch.")
        + " (Use `python -m mock_evaluator score-zip --help` for scoring a submission.zip.)" * (not score_zip))
    if score_zip:
        parser.add_argument("zip", help="the submission.zip written by the notebook")
    else:
        parser.add_argument("--submission", default="submission/unlearning.py",
                            help="a .py file defining unlearning(net, retain_loader, forget_loader, validation_loader)")
    parser.add_argument("--num-models", type=int, default=512, help="N: unlearned copies and retrained oracles per set (challenge: 512)")
    parser.add_argument("--dataset", choices=DATASETS, default="digits" if not score_zip else "kaggle")
    parser.add_argument("--data-dir", default=None, help="folder of the cifar10 or kaggle data")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--seed", type=int, default=0, help="base seed of every model's seed")
    parser.add_argument("--output-dir", default="outputs", help="reports go to OUTPUT_DIR/RUN_NAME/")
    parser.add_argument("--run-name", default=None, help="default: DATASET-SUBMISSION-nN-seedS")
    parser.add_argument("--cache-dir", default=".cache", help="the original model, oracles and finished runs")
    parser.add_argument("--time-budget", type=float, default=0.2,
                        help="largest allowed mean unlearning time as a fraction of one retrain (challenge: about 0.2)")
    parser.add_argument("--warn-only", action="store_true", help="over budget: warn, but exit 0")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: 2 on a CPU, 1 on a GPU)")
    parser.add_argument("--attack-models", type=int, default=32, help="models per method that the kit's attack is run on")
    parser.add_argument("--no-baseline", action="store_true", help="skip the starter kit's fine-tuning baseline")
    parser.add_argument("--epochs", type=int, default=None, help="cifar10/kaggle: epochs of the training recipe")
    parser.add_argument("--download", action="store_true", help="cifar10: download the data into --data-dir if missing")
    parser.add_argument("--forget-idx", default=None, help="cifar10: the kit's forget_idx.npy")
    parser.add_argument("--original-weights", default=None, help="cifar10: the kit's published original weights (.pth)")
    parser.add_argument("--amp", action="store_true",
                        help="CUDA: train the original and the oracles with bf16 autocast (logits stay float32)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _config(args, submission: str) -> EvalConfig:
    options = {name: value for name, value in (("epochs", args.epochs), ("download", args.download or None),
                                               ("forget_idx", args.forget_idx),
                                               ("original_weights", args.original_weights),
                                               ("amp", args.amp or None)) if value is not None}
    return EvalConfig(dataset=args.dataset, data_dir=args.data_dir, setting_options=options, submission=submission,
                      num_models=args.num_models, seed=args.seed, device=args.device, output_dir=args.output_dir,
                      run_name=args.run_name, cache_dir=args.cache_dir, time_budget=args.time_budget,
                      warn_only=args.warn_only, workers=args.workers, attack_models=args.attack_models,
                      baseline=not args.no_baseline, progress=not args.quiet)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    score_zip = bool(argv) and argv[0] == "score-zip"
    args = _parser(score_zip).parse_args(argv[1:] if score_zip else argv)
    from mock_evaluator.metric import num_buckets

    if args.num_models >= 2 and num_buckets(args.num_models) <= 2:
        print(f"note: with N = {args.num_models} the metric has only {num_buckets(args.num_models)} ε bucket(s), "
              "so every example scores (almost) 0 points; use N >= 8 for a meaningful forget quality", file=sys.stderr)
    try:
        if score_zip:
            config = _config(args, submission="submission/unlearning.py")
            evaluation = Evaluation(config, checkpoint_zip=args.zip)
        else:
            config = _config(args, submission=args.submission)
            evaluation = Evaluation(config)
        results = evaluation.run()
    except SubmissionError as error:
        print(f"\nSUBMISSION ERROR: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, FileNotFoundError) as error:
        print(f"\nERROR: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    name = config.run_name or evaluation.default_run_name()
    folder = Path(config.output_dir) / name
    written = write_outputs(results, evaluation.oracle_confidences, folder)
    print()
    print(format_table(results, config.time_budget))
    print(f"\none ordinary retrain: {results['retrain_seconds']:.2f} s; "
          f"oracle reference = exact retraining scored against the oracles at N = {config.num_models}")
    print(f"results written to {folder}/ ({', '.join(p.name for p in written)})")
    submission = results["methods"]["submission"]
    if submission.over_budget:
        print(f"\nThe submission is OVER the time budget: mean {submission.time_fraction:.3f} of a retrain "
              f"> {config.time_budget} (the challenge rejected such submissions).", file=sys.stderr)
        return 0 if config.warn_only else EXIT_OVER_BUDGET
    return 0
