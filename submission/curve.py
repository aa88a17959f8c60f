"""``python -m submission.curve``: SRFL's per-step forget and retain accuracy on the default data.

Writes ``outputs/srfl_curve.csv`` (step, loss, facc, racc) and ``outputs/srfl_accuracy.png``: the
accuracy of the student on each step's forget batch and retain batch (train mode, as logged during
the run), from the cached original model on the digits data -- the picture of "forget accuracy goes
low while retain accuracy stays (comparatively) high".
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import pandas as pd
import torch

from starter_kit.data import load_digits_data, make_loaders
from starter_kit.evaluation import accuracy
from starter_kit.models import SmallResNet
from starter_kit.original import load_or_train_original
from starter_kit.training import DIGITS_RECIPE
from submission.unlearning import unlearning


def srfl_curve(epochs: int = 2, lr: float = 0.01, seed: int = 0, cache_dir=".cache") -> tuple[pd.DataFrame, dict]:
    data = load_digits_data()
    loaders = make_loaders(data, seed=seed)
    original = load_or_train_original(data, SmallResNet, DIGITS_RECIPE, cache_dir=cache_dir)
    net = copy.deepcopy(original)
    torch.manual_seed(seed)
    record: list[dict] = []
    unlearning(net, loaders.retain, loaders.forget, loaders.validation, epochs=epochs, lr=lr, record=record)
    final = {f"{who}_{part}": accuracy(model, getattr(loaders, part)) for who, model in (("original", original), ("srfl", net))
             for part in ("retain", "forget", "test")}
    return pd.DataFrame(record), final


def plot_curve(frame: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(frame["step"], frame["racc"], label="retain batch accuracy (racc)", color="tab:green")
    ax.plot(frame["step"], frame["facc"], label="forget batch accuracy (facc)", color="tab:red")
    ax.set_xlabel("SRFL step")
    ax.set_ylabel("accuracy on the step's batch")
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="outputs")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame, final = srfl_curve(args.epochs, args.lr, args.seed)
    frame.to_csv(out / "srfl_curve.csv", index=False)
    plot_curve(frame, out / "srfl_accuracy.png", f"SRFL on digits ({args.epochs} epochs, lr {args.lr})")
    print("accuracy (eval mode)   retain  forget  test")
    for who in ("original", "srfl"):
        print(f"{who:<22} {final[who + '_retain']:.4f}  {final[who + '_forget']:.4f}  {final[who + '_test']:.4f}")
    print(f"wrote {out / 'srfl_curve.csv'} and {out / 'srfl_accuracy.png'}")


if __name__ == "__main__":
    main()
