"""Submissions that hang, exit or kill their worker: the evaluator names the model and the cause, keeps the
finished models, and stays usable -- under the local process pool and under Ray (skipped without Ray).

Each hostile submission misbehaves on model 3 only (it reads its index from its seed) and returns the
model untouched otherwise, so the runs are fast and the finished ones are real saved results.
"""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from testing_helpers import evaluation_on

from unlearning_mock.mock_evaluator.cli import main
from unlearning_mock.mock_evaluator.evaluate import SubmissionError, seeds_for
from unlearning_mock.mock_evaluator.method import method_from_spec

pytestmark = pytest.mark.isolation

N = 8
BAD_MODEL = 3
ROOT = Path(__file__).resolve().parents[1]
# seconds a submission may run (counted from its call): these return at once; Ray polls its clock each second
TIMEOUTS = {"local": 3.0, "ray": 4.0}
HOSTILE = {  # what model 3 does -> what the error must say
    "hang": ("time.sleep(10**6)", "model 3: the submission ran longer than the limit of {limit:g} s (--run-timeout)"),
    "exit": ("sys.exit(3)", "model 3: the submission called sys.exit(3)"),
    "interrupt": ("raise KeyboardInterrupt", "model 3: the submission raised KeyboardInterrupt"),
    "die": ("os._exit(1)", "model 3: the worker running the submission died ("),
}


def hostile_submission(folder: Path, action: str, name: str) -> str:
    """A submission that does ``action`` on model ``BAD_MODEL`` (seed offset) and returns ``net`` otherwise."""
    bad_seed = seeds_for(0, "unlearning", N)[BAD_MODEL]
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(f"""
        import os, sys, time
        import torch

        def unlearning(net, retain_loader, forget_loader, validation_loader):
            if torch.initial_seed() == {bad_seed}:
                {action}
            return net
    """))
    return str(path)


def saved_models(evaluation, method) -> set[int]:
    folders = [p for p in (evaluation.cache / "runs").glob(f"digits-{method.slug}-*")]
    return {int(f.stem.split("-")[1]) for folder in folders for f in folder.glob("model-*.npz")}


@pytest.mark.parametrize("engine", ["local", "ray"])
@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_submission_is_named_and_finished_models_kept(tmp_path, cache_dir, original, request, engine, kind):
    action, expected = HOSTILE[kind]
    limit = TIMEOUTS[engine]
    evaluation = evaluation_on(request.getfixturevalue(f"{engine}_executor"), cache_dir, N, run_timeout=limit)
    method = method_from_spec(hostile_submission(tmp_path, action, f"{kind}_{engine}"))
    started = time.perf_counter()
    with pytest.raises(SubmissionError) as caught:
        evaluation.runs(method)
    message = str(caught.value)
    assert expected.format(limit=limit) in message
    saved = saved_models(evaluation, method)
    # the models dispatched before model 3 finished and are on disk; the message counts them
    assert BAD_MODEL not in saved and len(saved) >= 2
    assert re.search(rf"\b{len(saved)} of {N} finished results are saved", message)
    if kind == "hang":
        assert time.perf_counter() - started < limit + 30
    # the executor is still usable: a well-behaved method runs all N models on it afterwards
    good = method_from_spec(hostile_submission(tmp_path, "pass", f"good_after_{kind}_{engine}"))
    assert len(evaluation.runs(good)["forget_conf"]) == N


def test_cli_stops_a_hang_with_exit_code_2(tmp_path, cache_dir, capsys):
    path = hostile_submission(tmp_path, HOSTILE["hang"][0], "hang_cli")
    code = main(["--dataset", "digits", "--submission", path, "--num-models", str(N), "--cache-dir", str(cache_dir), "--no-baseline",
                 "--output-dir", str(tmp_path), "--quiet", "--attack-models", "4", "--workers", "2",
                 "--run-timeout", "2"])
    assert code == 2
    assert "model 3: the submission ran longer than the limit of 2 s (--run-timeout)" in capsys.readouterr().err


def test_ctrl_c_stops_the_workers_and_keeps_the_cache_consistent(tmp_path, cache_dir):
    """SIGINT to the whole process group (what a terminal's Ctrl-C does) while model 3 hangs in a worker."""
    marker = tmp_path / "worker.pid"
    action = f"open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(10**6)"
    path = hostile_submission(tmp_path, action, "ctrl_c")
    command = [sys.executable, "-m", "mock_evaluator", "--dataset", "digits", "--submission", path, "--num-models", str(N), "--cache-dir",
               str(cache_dir), "--no-baseline", "--output-dir", str(tmp_path), "--quiet", "--workers", "2"]
    # preexec_fn: a runner that started us with SIGINT ignored (a background job) must not pass that on
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not (marker.exists() and marker.read_text()) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), f"model 3 never started: {process.poll()}"
        # the other worker goes on to model 4 while model 3 hangs: interrupt once it has saved it
        model_4 = "runs/digits-ctrl_c-*/model-00004.npz"
        while not list(Path(cache_dir).glob(model_4)) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(Path(cache_dir).glob(model_4)), f"model 4 was never saved: {process.poll()}"
        os.killpg(process.pid, signal.SIGINT)
        interrupted = time.monotonic()
        _, err = process.communicate(timeout=30)
        stopped_after = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130 and "INTERRUPTED" in err, err[-2000:]
    assert stopped_after < 10
    with pytest.raises(ProcessLookupError):  # the hung worker is gone
        os.kill(int(marker.read_text()), 0)
    runs = next((Path(cache_dir) / "runs").glob("digits-ctrl_c-*"))
    assert not list(runs.glob("*.tmp")) and "model-00003.npz" not in {p.name for p in runs.iterdir()}


def test_asking_for_ray_without_it_says_how_to_install(monkeypatch, tmp_path, cache_dir, original, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    code = main(["--dataset", "digits", "--submission", "baseline", "--num-models", str(N), "--no-baseline", "--executor", "ray",
                 "--cache-dir", str(cache_dir), "--output-dir", str(tmp_path), "--quiet"])
    assert code == 2
    assert "pip install -r requirements-ray.txt" in capsys.readouterr().err
