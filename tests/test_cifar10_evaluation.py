"""The whole evaluation on a small folder in the real CIFAR-10 file format (N = 2, one epoch)."""

import json

import pandas as pd
import pytest

from unlearning_mock.mock_evaluator.cli import main
from unlearning_mock.starter_kit.cifar10 import write_fake_cifar10

pytestmark = pytest.mark.slow


def test_cifar10_end_to_end_with_two_models(tmp_path):
    data_dir = tmp_path / "cifar"
    write_fake_cifar10(data_dir, n_train=200, n_test=100, seed=0)
    code = main(["--dataset", "cifar10", "--data-dir", str(data_dir), "--num-models", "2", "--epochs", "1",
                 "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path / "out"),
                 "--run-name", "cifar", "--quiet", "--workers", "1", "--attack-models", "2", "--warn-only",
                 "--conv-backend", "onednn"])   # the pipeline, not the choice (timing ResNet-18 steps takes a minute)
    assert code == 0
    folder = tmp_path / "out" / "cifar"
    summary = pd.read_csv(folder / "summary.csv").set_index("method")
    assert {"unlearning", "oracle reference", "baseline"} <= set(summary.index)
    results = json.loads((folder / "results.json").read_text())
    assert results["setting"]["name"] == "cifar10" and results["setting"]["forget_size"] == 20
    assert len(results["methods"]["unlearning"]["epsilons"]) == 20
    assert (folder / "epsilon_histogram.png").exists()
