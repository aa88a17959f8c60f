"""Fine-tune ratio at N = 512 from cached oracle sets A and B, and at smaller N from their first n models.

    .venv/bin/python probes/finish.py ORACLES_A.npz ORACLES_B.npz ORIGINAL.pt --batch 8 --seed 1
"""

import argparse
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

import probe
from unlearning_mock.mock_evaluator.scoring.figures import figures_of_models
from unlearning_mock.mock_evaluator.scoring.score import score_method
from unlearning_mock.starter_kit import mnist_groups as m


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("original")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(1)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    data = m.load_mnist_groups_data()
    A = dict(np.load(a.a))
    if a.b == "half":   # no set B: the second half of A stands in for it (N = half of A's size)
        half = len(A["forget_conf"]) // 2
        A, B = {k: v[:half] for k, v in A.items()}, {k: v[half:] for k, v in A.items()}
    else:
        B = dict(np.load(a.b))
    n = len(A["forget_conf"])
    state = torch.load(a.original)
    ft_path = Path(a.a).with_name(Path(a.a).name.replace("oraclesA", "finetune").replace(".npz", f"-{n}.npz"))
    if ft_path.exists():
        ft = dict(np.load(ft_path))
    else:
        t = time.perf_counter()
        seeds = [a.seed * 1_000_000 + 3 * 10_000 + i for i in range(n)]
        ft = probe.finetune_figures(data, m.make_model, state, a.batch, seeds, 128, 1e-3, 1)
        np.savez(ft_path, **ft)
        print(f"fine-tunes: {time.perf_counter() - t:.0f}s", flush=True)
    orig = m.make_model()
    orig.load_state_dict(state)
    (of,) = figures_of_models([orig], data)
    print(f"original: retain {of['retain_acc']:.3f} forget {of['forget_acc']:.3f} test {of['test_acc']:.3f}; "
          f"oracles: retain {A['retain_acc'].mean():.3f} forget {A['forget_acc'].mean():.3f} test {A['test_acc'].mean():.3f}; "
          f"fine-tune: retain {ft['retain_acc'].mean():.3f} forget {ft['forget_acc'].mean():.3f} test {ft['test_acc'].mean():.3f}")
    for k in (32, 64, 128, 256, 512):
        if k > n:
            break
        sub = lambda f: {key: v[:k] for key, v in f.items()}
        ref = score_method("ref", sub(B), sub(A), attack_models=2)
        s = score_method("ft", sub(ft), sub(A), attack_models=2)
        orig_figs = {key: np.repeat(np.asarray(v)[None], k, 0) for key, v in of.items()}
        so = score_method("orig", orig_figs, sub(A), attack_models=1)
        spread, shift = probe.spread(sub(ft), sub(A))
        print(f"N={k}: oracle ref {ref.final_score:.4f}  fine-tune {s.final_score:.4f} (F {s.forget_quality:.4f})  "
              f"RATIO {s.final_score / ref.final_score:.3f}  original {so.final_score:.4f}  spread {spread:.2f} shift {shift:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
