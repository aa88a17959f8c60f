"""``unlearning-mock curve [--method srfl|alif]``: per-step forget / retain batch accuracy curves.

A training picture like the one in the seed's README, for every declared method with ``curve`` options
(:func:`~starter_kit.method_declaration.unlearning_method`; SRFL and ALIF: both take ``record=`` and log one
dict per step with ``step, loss, facc, racc``: the student's accuracy on the step's forget and retain batch,
train mode). For each setting and each of the method's declared variants (SRFL: ``variant`` in submitted /
seed; ALIF: ``target`` in decouple / unseen) it trains a fresh copy of the setting's original model and
writes

* ``outputs/{method}_curve.csv``: ``setting, variant, step, epoch, lr, loss, facc, racc`` (for ALIF
  the ``variant`` column holds the target);
* ``outputs/{method}_accuracy.png``: a panel per setting, retain (green) and forget (red) batch
  accuracy against the step, one line style per variant (:mod:`mock_evaluator.reports.curve`);

and prints the eval-mode retain / forget / test accuracy of every (setting, variant) and the
decoupling check: mean facc and racc over the last fifth of the steps (decoupled when facc <= 0.3 and
racc >= 0.85).

Settings (:data:`SETTINGS`; by default :data:`DEFAULT_SETTINGS`): ``digits`` (SmallResNet, the cached original),
``kaggle`` (torchvision resnet18 from the mock Kaggle input, written with :mod:`mock_evaluator.kaggle.mock_input` if
absent; dict batches of 64) and ``mnist-groups`` (the evaluator's default setting: SmallResNet, loaders of 4). On
digits and the mock the curves run longer than the submission defaults (each method's declared ``curve``
options), to show the whole curve; they are not submission runs and need not fit the time budget. On
mnist-groups they run each method's declared defaults for the setting (its profile's share of the retrain),
the runs the evaluator scores.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import pandas as pd
import torch

from unlearning_mock.mock_evaluator.kaggle.mock_input import write_mock_kaggle_input
from unlearning_mock.mock_evaluator.reports.curve import plot_curves
from unlearning_mock.starter_kit.data import make_loaders
from unlearning_mock.starter_kit.evaluation import accuracy
from unlearning_mock.starter_kit.kaggle import ORIGINAL_WEIGHTS
from unlearning_mock.starter_kit.original import setting_original
from unlearning_mock.starter_kit.settings import load_setting

SETTINGS = ("digits", "kaggle", "mnist-groups")
DEFAULT_SETTINGS = ("digits", "kaggle")
DECOUPLED_FORGET_MAX = 0.3
DECOUPLED_RETAIN_MIN = 0.85
LAST_FRACTION = 0.2


def curve_methods() -> dict:
    """Method name (``srfl``, ``alif``) -> its ``unlearning``: every registered method that declares ``curve``
    options, in registry order (its variants are the curve's lines)."""
    from unlearning_mock.methods.registry import METHODS, load_method

    functions = {}
    for name in METHODS:
        function = load_method(name)[0]
        if function.curve:
            functions.setdefault(function.method_name, function)
    return functions


def variant_option(function) -> tuple[str, tuple]:
    """The option that tells ``function``'s declared variants apart, and its value in each variant."""
    keys = {key for variant in function.variants for key in variant.options}
    if len(keys) != 1:
        raise ValueError(f"{function.method_name}: the curve draws one line per variant, which needs variants "
                         f"that differ in one option; they fix {sorted(keys) or 'none'}")
    option = keys.pop()
    return option, tuple(variant.options[option] for variant in function.variants)


def method_function(method: str):
    """The ``unlearning`` function of ``method`` (one of :func:`curve_methods`)."""
    functions = curve_methods()
    if method not in functions:
        raise ValueError(f"unknown method {method!r}: choose one of {sorted(functions)}")
    return functions[method]


def load_curve_setting(name: str, kaggle_dir="mock_kaggle_input", cache_dir=None, seed: int = 0):
    """(original model in eval mode, loaders, profile) of the setting ``name``, built by :func:`load_setting`."""
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}: choose from {SETTINGS}")
    data_dir = None
    if name == "kaggle":
        data_dir = Path(kaggle_dir)
        if not (data_dir / ORIGINAL_WEIGHTS).is_file():
            write_mock_kaggle_input(data_dir)
    setting = load_setting(name, data_dir)
    original = setting_original(setting, cache_dir=cache_dir, log=lambda *_: None).model
    loaders = make_loaders(setting.data, setting.batch_size, seed=seed, dict_batches=setting.dict_batches)
    return original, loaders, setting.profile


def last_fifth(frame: pd.DataFrame) -> dict:
    """Mean facc and racc over the last fifth of the steps (at least one step) of one run."""
    tail = frame.sort_values("step").tail(max(1, round(len(frame) * LAST_FRACTION)))
    facc, racc = float(tail["facc"].mean()), float(tail["racc"].mean())
    return {"tail_facc": facc, "tail_racc": racc,
            "decoupled": facc <= DECOUPLED_FORGET_MAX and racc >= DECOUPLED_RETAIN_MIN}


def run_curves(method: str = "srfl", settings=DEFAULT_SETTINGS, seed: int = 0, overrides: dict | None = None,
               kaggle_dir="mock_kaggle_input", cache_dir=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train every variant of ``method`` on every setting; (per-step curve, per-run summary).

    ``overrides`` replaces the curve's keyword arguments (e.g. ``{"epochs": 1}`` for a quick look).
    """
    unlearning = method_function(method)
    option, values = variant_option(unlearning)
    steps, summary = [], []
    for setting in settings:
        original, loaders, profile = load_curve_setting(setting, kaggle_dir, cache_dir, seed)
        summary.append({"setting": setting, "variant": "original", "steps": 0,
                        **{part: accuracy(original, getattr(loaders, part)) for part in ("retain", "forget", "test")}})
        for value in values:
            net = copy.deepcopy(original)
            torch.manual_seed(seed)
            record: list[dict] = []
            options = {**unlearning.curve.get(setting, {}), **(overrides or {})}
            unlearning(net, loaders.retain, loaders.forget, loaders.validation,
                       **{option: value}, **options, record=record, profile=profile)
            frame = pd.DataFrame(record).assign(setting=setting, variant=value)
            steps.append(frame)
            summary.append({"setting": setting, "variant": value, "steps": len(frame),
                            **{part: accuracy(net, getattr(loaders, part)) for part in ("retain", "forget", "test")},
                            **last_fifth(frame)})
    curve = pd.concat(steps, ignore_index=True)
    first = ["setting", "variant", "step"]
    return curve[first + [c for c in curve.columns if c not in first]], pd.DataFrame(summary)


def main(argv=None, prog: str = "unlearning-mock curve") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=sorted(curve_methods()), default="srfl")
    parser.add_argument("--settings", default=",".join(DEFAULT_SETTINGS), help=f"comma-separated, from {SETTINGS}")
    parser.add_argument("--epochs", type=float, default=None, help="override the curve's epochs on every setting")
    parser.add_argument("--lr", type=float, default=None, help="override the curve's lr on every setting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kaggle-dir", default="mock_kaggle_input")
    parser.add_argument("--cache-dir", default=None, help="default: $UNLEARNING_CACHE_DIR or the user's cache folder")
    parser.add_argument("--output-dir", default="outputs")
    args = parser.parse_args(argv)
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        parser.error(f"--settings takes names from {SETTINGS}, got {args.settings!r}")
    overrides = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr)) if v is not None}
    try:
        curve, summary = run_curves(args.method, settings, args.seed, overrides, args.kaggle_dir, args.cache_dir)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    curve.to_csv(out / f"{args.method}_curve.csv", index=False)
    plot_curves(curve, out / f"{args.method}_accuracy.png", args.method)
    option = variant_option(method_function(args.method))[0]
    print(f"eval-mode accuracy at the end of each curve, and the last fifth of the steps (train-mode batch accuracy)")
    print(f"{'setting':<8} {option:<10} {'steps':>5}  retain  forget    test   last-fifth facc  racc  decoupled")
    for row in summary.to_dict("records"):
        tail = (f"   {row['tail_facc']:.3f}  {row['tail_racc']:.3f}  {'yes' if row['decoupled'] else 'no'}"
                if row["variant"] != "original" else "")
        print(f"{row['setting']:<8} {row['variant']:<10} {row['steps']:>5}  {row['retain']:.4f}  {row['forget']:.4f}  "
              f"{row['test']:.4f}{tail}")
    print(f"wrote {out / f'{args.method}_curve.csv'} and {out / f'{args.method}_accuracy.png'}")


if __name__ == "__main__":
    main()
