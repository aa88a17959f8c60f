"""The Ray executor on a local 2-CPU instance (skipped when Ray is not installed): the same figures as the
local process pool for the same seeds, and a run interrupted under one executor resumes under the other."""

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from test_hostile import local_ray  # noqa: E402,F401 -- the one Ray instance of the session

from unlearning_mock.mock_evaluator.cli import main  # noqa: E402
from unlearning_mock.mock_evaluator.evaluate import EvalConfig, Evaluation, seeds_for  # noqa: E402
from unlearning_mock.mock_evaluator.engine.local import ProcessExecutor  # noqa: E402
from unlearning_mock.mock_evaluator.method import method_from_spec  # noqa: E402
from unlearning_mock.mock_evaluator.engine.ray_engine import RayExecutor  # noqa: E402

N = 8


def test_ray_gives_the_same_figures_as_the_local_pool(cache_dir, original, local_ray):
    method = method_from_spec("submission/unlearning.py")  # SRFL: real training in every run
    config = EvalConfig(dataset="digits", num_models=N, cache_dir=str(cache_dir), baseline=False, submissions=(), progress=False,
                        run_timeout=120)
    figures = {}
    for name, executor in (("local", ProcessExecutor(2)), ("ray", RayExecutor())):
        evaluation = Evaluation(config, executor=executor, log=lambda *_: None)
        folder_glob = f"digits-{method.slug}-*"
        for folder in (evaluation.cache / "runs").glob(folder_glob):  # computed here, not read from the cache
            shutil.rmtree(folder)
        try:
            figures[name] = evaluation.runs(method)
        finally:
            executor.close()
    assert local_ray.is_initialized()  # the executor leaves an instance it did not start running
    for key in figures["local"]:
        if key != "seconds":
            assert np.array_equal(figures["local"][key], figures["ray"][key]), key
    assert figures["local"]["forget_acc"].mean() < 0.9  # SRFL really ran (the original has 1.0)


def test_run_interrupted_under_ray_resumes_under_local_and_back(tmp_path, cache_dir, local_ray, capsys):
    calls, stop = tmp_path / "calls", tmp_path / "stop"
    calls.mkdir()
    stop.touch()
    first_seed = seeds_for(0, "unlearning", N)[0]
    path = tmp_path / "resumable.py"
    path.write_text(textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        import torch
        from unlearning_mock.starter_kit.baseline import kaggle_sample_unlearning

        def unlearning(net, retain_loader, forget_loader, validation_loader):
            model = torch.initial_seed() - {first_seed}
            Path({str(calls)!r}, f"{{model}}-{{os.getpid()}}-{{time.time_ns()}}").touch()  # one file per call
            if model == 5 and Path({str(stop)!r}).exists():
                raise RuntimeError("stopped part-way")
            return kaggle_sample_unlearning(net, retain_loader, forget_loader, validation_loader)
    """))

    def run(executor: str) -> int:
        return main(["--dataset", "digits", "--submission", str(path), "--num-models", str(N), "--cache-dir", str(cache_dir),
                     "--output-dir", str(tmp_path), "--run-name", executor, "--quiet", "--no-baseline",
                     "--attack-models", "4", "--executor", executor, "--workers", "2"])

    def models_called() -> list[int]:
        made = sorted(int(p.name.split("-")[0]) for p in calls.iterdir())
        for p in calls.iterdir():
            p.unlink()
        return made

    assert run("ray") == 2
    assert "model 5: unlearning() raised RuntimeError: stopped part-way" in capsys.readouterr().err
    runs = next((Path(cache_dir) / "runs").glob("digits-resumable-*"))
    saved = sorted(int(p.stem.split("-")[1]) for p in runs.glob("model-*.npz"))
    assert 5 not in saved and len(saved) >= 2
    assert 5 in models_called()
    victim = runs / f"model-{saved[0]:05d}.npz"  # a truncated file is detected and redone, never read
    victim.write_bytes(victim.read_bytes()[:100])
    stop.unlink()
    assert run("local") == 0
    assert models_called() == sorted(set(range(N)) - set(saved[1:]))  # the missing ones and the corrupt one
    assert run("ray") == 0
    assert models_called() == []  # everything cached, whichever executor wrote it
    local = json.loads((tmp_path / "local" / "results.json").read_text())["methods"]
    ray = json.loads((tmp_path / "ray" / "results.json").read_text())["methods"]
    assert local.keys() == ray.keys()
    for name in local:
        assert local[name]["epsilons"] == ray[name]["epsilons"] and local[name]["final_score"] == ray[name]["final_score"]
