"""The mock evaluator end to end on the real digits data with small N, and its failure modes."""

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from unlearning_mock.mock_evaluator.cli import main
from unlearning_mock.mock_evaluator.evaluate import EvalConfig, Evaluation, SubmissionError
from unlearning_mock.mock_evaluator.scoring.metric import bucket_points, per_example_epsilons
from unlearning_mock.mock_evaluator.scoring.score import score_method
from unlearning_mock.mock_evaluator.engine.store import load_arrays, save_arrays

pytestmark = pytest.mark.slow

N = 8
ROOT = Path(__file__).resolve().parents[1]


def run_cli(tmp_path, cache_dir, *extra, name="run"):
    return main(["--dataset", "digits", "--num-models", str(N), "--cache-dir", str(cache_dir), "--output-dir", str(tmp_path),
                 "--run-name", name, "--quiet", "--workers", "1", "--attack-models", "4", *extra])


def write_submission(tmp_path, body: str, name="sub.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("out")
    code = main(["--dataset", "digits", "--num-models", str(N), "--cache-dir", str(cache_dir), "--output-dir", str(out),
                 "--run-name", "default", "--quiet", "--workers", "2", "--attack-models", "4",
                 "--warn-only"])   # the budget check is test_over_budget_fails_unless_warn_only's: here a loaded
                                   # machine (the retrain timed in a quiet moment) must not fail the run
    return code, out / "default"


@pytest.mark.training
def test_end_to_end_writes_every_output(default_run):
    code, folder = default_run
    assert code == 0
    summary = pd.read_csv(folder / "summary.csv")
    assert {"unlearning", "oracle reference", "baseline"} <= set(summary["method"])
    per_example = pd.read_csv(folder / "per_example.csv")
    assert len(per_example) == 3 * 126 and per_example["points"].between(0, 1).all()
    results = json.loads((folder / "results.json").read_text())
    assert results["config"]["num_models"] == N and "torch" in results["versions"]
    assert set(results["conv_backend"]["backends"]) == {"one_model", "fused", "figures"}           # chosen, and said so
    assert results["methods"]["baseline"]["timed_calls"] == min(8, N)    # trained fused; timed by one-model calls
    for png in ("epsilon_histogram.png", "worst_examples_confidence.png", "accuracies.png", "roc.png"):
        assert (folder / png).stat().st_size > 10_000
    rows = summary.set_index("method")
    # the likelihood-ratio view and the diagnostics, every row; exact retraining at the floor
    for column in ("lira_auc", "lira_tpr_at_1pct", "lira_tpr_at_0.1pct", "lira_worst_5pct_accuracy",
                   "spread_ratio", "mean_shift"):
        assert summary[column].notna().all(), column
    assert rows.loc["oracle reference", "lira_auc"] == pytest.approx(0.5, abs=0.05)
    assert rows.loc["oracle reference", "lira_tpr_at_1pct"] < 0.05
    assert rows.loc["original (not unlearned)", "lira_auc"] > 0.95
    assert rows.loc["original (not unlearned)", "spread_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert len(results["methods"]["unlearning"]["lira_roc_tpr"]) == len(results["lira_roc_fpr"])
    assert results["original_lira"]["lira_auc"] == pytest.approx(rows.loc["original (not unlearned)", "lira_auc"])
    assert per_example["lira_accuracy"].between(0, 1).all()
    # SRFL forgets (forget accuracy far below the oracles'), exact retraining scores best
    assert rows.loc["unlearning", "forget_acc"] < rows.loc["oracle reference", "forget_acc"] - 0.2
    assert rows.loc["oracle reference", "final_score"] > rows.loc["unlearning", "final_score"]
    assert rows.loc["unlearning", "time_fraction"] > 0


def test_same_seed_gives_identical_results(default_run, tmp_path, cache_dir):
    _, folder = default_run
    assert run_cli(tmp_path, cache_dir, "--warn-only", name="again") == 0   # the budget is another test's
    first = json.loads((folder / "results.json").read_text())["methods"]
    again = json.loads((tmp_path / "again" / "results.json").read_text())["methods"]
    for method in first:
        assert first[method]["epsilons"] == again[method]["epsilons"]
        assert first[method]["final_score"] == again[method]["final_score"]


def test_oracles_against_themselves_get_top_points(default_run, cache_dir):
    folder = next((Path(cache_dir) / "oracles").iterdir())
    oracles = [load_arrays(p) for p in sorted(folder.glob("*.npz"))]
    conf = np.concatenate([o["forget_conf"] for o in oracles])[:N]
    eps = per_example_epsilons(conf, conf)
    assert np.all(eps == 0) and np.all(bucket_points(eps, N) == 1.0)
    figures = {k: np.concatenate([o[k] for o in oracles])[:N] for k in oracles[0]}
    assert score_method("self", figures, figures, attack_models=2).final_score == 1.0


def test_resume_redoes_only_missing_work(tmp_path, cache_dir, one_step_source):
    counter = tmp_path / "calls.txt"
    stop = tmp_path / "stop"
    stop.write_text("5")
    (tmp_path / "one_step.py").write_text(one_step_source)  # a real, cheap method: one step of retain fine-tuning
    source = f'''
        from pathlib import Path
        from one_step import unlearning as one_step

        def unlearning(net, retain_loader, forget_loader, validation_loader):
            counter, stop = Path({str(counter)!r}), Path({str(stop)!r})
            calls = int(counter.read_text()) if counter.exists() else 0
            counter.write_text(str(calls + 1))
            if stop.exists() and calls + 1 == int(stop.read_text()):
                raise RuntimeError("stopped")  # the run breaks off during the fifth call (one worker: in order)
            return one_step(net, retain_loader, forget_loader, validation_loader)
    '''
    path = write_submission(tmp_path, source)
    # one worker keeps the calls in order; a generous limit: a loaded 2-core machine must not trip the 60 s floor,
    # nor the time budget (checked by test_over_budget_fails_unless_warn_only)
    limit = ("--run-timeout", "600", "--warn-only")
    assert run_cli(tmp_path, cache_dir, "--submission", path, "--no-baseline", *limit) == 2
    assert int(counter.read_text()) == 5
    runs = next(p for p in (Path(cache_dir) / "runs").iterdir() if p.name.startswith("digits-sub-") and
                len(list(p.glob("*.npz"))) == 4)
    # a truncated file is detected and redone, never read
    victim = sorted(runs.glob("*.npz"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    stop.unlink()
    assert run_cli(tmp_path, cache_dir, "--submission", path, "--no-baseline", *limit) == 0
    assert int(counter.read_text()) == 5 + (N - 4) + 1  # the missing four, plus the corrupt one
    counter.write_text("0")
    assert run_cli(tmp_path, cache_dir, "--submission", path, "--no-baseline", "--warn-only") == 0
    assert int(counter.read_text()) == 0  # everything cached


def test_store_rejects_corrupt_files(tmp_path):
    path = tmp_path / "a.npz"
    save_arrays(path, {"x": np.arange(5.0)})
    assert np.array_equal(load_arrays(path)["x"], np.arange(5.0))
    data = bytearray(path.read_bytes())
    data[data.index(np.arange(5.0).tobytes()) + 3] ^= 0xFF  # one flipped bit inside the stored array
    path.write_bytes(bytes(data))
    assert load_arrays(path) is None and not path.exists()


def test_cache_keys_separate_what_differs(default_run, cache_dir):
    evaluation = Evaluation(EvalConfig(dataset="digits", num_models=N, cache_dir=str(cache_dir), progress=False), log=lambda *_: None)
    key = evaluation.key("oracles", 64)
    assert key == evaluation.key("oracles", 64)
    assert key != evaluation.key("oracles", 32)
    from unlearning_mock.starter_kit.training import Recipe

    evaluation.setting.recipe = Recipe(epochs=3)
    assert key != evaluation.key("oracles", 64)


MISBEHAVING = [  # what the submission's call does -> what its error must say
    ("raise RuntimeError('boom')", "raised RuntimeError: boom"),
    ("import torch.nn as nn\n    return nn.Linear(2, 2)", "not the model it was given"),
    ("import torch.nn as nn\n    net.fc = nn.Linear(net.fc.in_features, 11)", "changed the shape of fc.weight"),
    ("import torch.nn as nn\n    net.extra = nn.Linear(2, 2)", "changed the architecture"),
    ("import torch\n    with torch.no_grad(): net.fc.weight.fill_(float('nan'))", "NaN or inf values in fc.weight"),
    ("import torch\n    with torch.no_grad(): net.fc.bias.fill_(1e38); net.fc.weight.fill_(1e38)", "logits"),
]


def test_misbehaving_submissions_get_clear_messages(tmp_path, cache_dir, capsys):
    """Every case in one run (one worker start and one timing retrain for all): each is named with its own cause."""
    paths = [write_submission(tmp_path, f"def unlearning(net, retain_loader, forget_loader, validation_loader):\n"
                                        f"    {body}\n", name=f"misbehaves_{i}.py") for i, (body, _) in enumerate(MISBEHAVING)]
    assert run_cli(tmp_path, cache_dir, *[arg for path in paths for arg in ("--submission", path)], "--no-baseline") == 2
    reports = capsys.readouterr().err.split("SUBMISSION ERROR: ")
    for i, (_, message) in enumerate(MISBEHAVING):
        (report,) = [text for text in reports if text.startswith(f"misbehaves_{i} failed on ")]
        assert report.startswith(f"misbehaves_{i} failed on model 0: ") and message in report, report


def test_missing_function_and_file(tmp_path, cache_dir, capsys):
    path = write_submission(tmp_path, "def something_else():\n    pass\n")
    assert run_cli(tmp_path, cache_dir, "--submission", path) == 2
    assert "defines no function `unlearning" in capsys.readouterr().err
    assert run_cli(tmp_path, cache_dir, "--submission", str(tmp_path / "nope.py")) == 2


def test_over_budget_fails_unless_warn_only(tmp_path, cache_dir, capsys):
    path = write_submission(tmp_path, """
        import time
        def unlearning(net, retain_loader, forget_loader, validation_loader):
            time.sleep(1.5)
            return net
    """)
    assert run_cli(tmp_path, cache_dir, "--submission", path, "--no-baseline", "--time-budget", "0.05") == 1
    assert "OVER the time budget" in capsys.readouterr().err
    assert run_cli(tmp_path, cache_dir, "--submission", path, "--no-baseline", "--time-budget", "0.05",
                   "--warn-only") == 0


def test_score_zip_scores_checkpoints_with_the_same_oracles(tmp_path, cache_dir, original, capsys):
    import zipfile

    import torch

    path = tmp_path / "submission.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(N):  # the untouched original, N times: it has not forgotten anything
            with archive.open(f"unlearned_checkpoint_{i}.pth", "w") as member:
                torch.save(original.state_dict(), member)
    common = ["--dataset", "digits", "--num-models", str(N), "--cache-dir", str(cache_dir), "--quiet",
              "--output-dir", str(tmp_path), "--workers", "1", "--attack-models", "4", "--no-baseline"]
    assert main(["score-zip", str(path), *common, "--run-name", "zip"]) == 0
    rows = pd.read_csv(tmp_path / "zip" / "summary.csv").set_index("method")
    assert rows.loc["submission.zip", "forget_acc"] == 1.0
    assert rows.loc["submission.zip", "forget_quality"] < rows.loc["oracle reference", "forget_quality"]
    capsys.readouterr()
    assert main(["score-zip", str(path), *common[:2], "--num-models", str(N + 1), *common[4:]]) == 2
    assert f"holds {N} checkpoint(s); exactly {N + 1}" in capsys.readouterr().err
