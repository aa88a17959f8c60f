"""The Ray executor on a local 2-CPU instance (skipped when Ray is not installed): the same figures as the
local process pool for the same seeds, and a run interrupted under one executor resumes under the other.
Which Ray it uses: without an address always a fresh local instance, whatever a stale cluster file says; an
address where nothing answers ends the command at once with one clear line. Every address here is loopback."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from unlearning_mock.mock_evaluator.cli import main  # noqa: E402
from unlearning_mock.mock_evaluator.evaluate import EvalConfig, Evaluation, seeds_for  # noqa: E402
from unlearning_mock.mock_evaluator.engine.local import ProcessExecutor  # noqa: E402
from unlearning_mock.mock_evaluator.method import method_from_spec  # noqa: E402
from unlearning_mock.mock_evaluator.engine.ray_engine import (CONNECT_SECONDS, RayExecutor,  # noqa: E402
                                                              check_answers, endpoint, join_failure)

pytestmark = pytest.mark.ray

pytestmark = pytest.mark.ray

N = 8
ROOT = Path(__file__).resolve().parents[1]


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


def free_loopback_port() -> int:
    """A loopback port where nothing listens (one just given out by the kernel and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def stale_cluster(monkeypatch):
    """A temporary Ray folder ($RAY_TMPDIR, never the machine's /tmp/ray) whose current-cluster file -- what a
    `ray start` that was never stopped leaves behind -- names a loopback port where nothing listens; the address."""
    folder = Path(tempfile.mkdtemp(prefix="umray-", dir="/tmp"))   # short: Ray's socket paths go under it
    address = f"127.0.0.1:{free_loopback_port()}"
    (folder / "ray").mkdir()
    (folder / "ray" / "ray_current_cluster").write_text(address)
    monkeypatch.setenv("RAY_TMPDIR", str(folder))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    try:
        yield address
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def command(tmp_path, cache_dir, one_step_source, *options, env=None) -> subprocess.CompletedProcess:
    """The command line in a process of its own (Ray not yet started there): two models of a one-step method."""
    path = tmp_path / "one_step.py"
    path.write_text(one_step_source)
    return subprocess.run([sys.executable, "-m", "mock_evaluator", "--submission", str(path), "--num-models", "2",
                           "--dataset", "digits", "--no-baseline", "--attack-models", "2", "--quiet",
                           "--cache-dir", str(cache_dir), "--output-dir", str(tmp_path), "--run-name", "run",
                           "--executor", "ray", *options],
                          cwd=ROOT, env=env or dict(os.environ), capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_without_an_address_a_stale_cluster_file_changes_nothing(tmp_path, cache_dir, original, one_step_source,
                                                                 stale_cluster):
    done = command(tmp_path, cache_dir, one_step_source)
    assert done.returncode == 0, done.stderr
    assert "Failed to connect" not in done.stderr
    scored = json.loads((tmp_path / "run" / "results.json").read_text())["methods"]
    assert np.isfinite(scored["one_step"]["final_score"])
    ray_folder = Path(os.environ["RAY_TMPDIR"]) / "ray"
    assert (ray_folder / "session_latest").exists()   # its own instance, in the folder holding the stale file


@pytest.mark.slow
@pytest.mark.parametrize("given", ["--ray-address", "$RAY_ADDRESS"])
def test_an_address_where_nothing_answers_ends_at_once_with_one_clear_line(tmp_path, cache_dir, one_step_source,
                                                                           stale_cluster, given):
    options = ("--ray-address", stale_cluster) if given == "--ray-address" else ()
    env = {**os.environ, "RAY_ADDRESS": stale_cluster} if given == "$RAY_ADDRESS" else None
    started = time.monotonic()
    done = command(tmp_path, cache_dir, one_step_source, *options, env=env)
    assert done.returncode == 2
    assert time.monotonic() - started < CONNECT_SECONDS
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(f"ERROR: no Ray cluster answers at {stale_cluster} (Connection refused): check "
                                "that the cluster's head node is running")
    assert "the head's port" in lines[-1] and "the cluster's token" in lines[-1]
    assert not [line for line in lines if "gcs" in line.lower() or "Traceback" in line]   # no Ray log lines


def test_auto_is_checked_at_the_address_ray_would_join(stale_cluster, monkeypatch):
    from ray._private import services

    # Ray's `auto` also looks for any cluster running on this machine; this test sees only its own stale file
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: frozenset())
    with pytest.raises(ValueError, match=f"^no Ray cluster answers at auto = {stale_cluster} \\(Connection refused\\)"):
        check_answers("auto")


def test_an_address_that_accepts_nothing_fails_within_the_bound():
    """A listener whose queue is full drops new connection attempts unanswered, as a firewall would."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = "%s:%d" % listener.getsockname()
        with socket.create_connection(listener.getsockname(), timeout=5):   # fills the queue
            started = time.monotonic()
            with pytest.raises(ValueError, match=f"^no Ray cluster answers at {address} \\(nothing answered "
                                                 "within 0.5 s\\)"):
                check_answers(address, seconds=0.5)
            assert time.monotonic() - started < 3


@pytest.mark.parametrize("address, expected", [("10.0.0.1:6379", ("10.0.0.1", 6379)), ("[::1]:6380", ("::1", 6380)),
                                               ("ray://head:10002", ("head", 10002)), ("ray://head", ("head", 10001))])
def test_the_checked_endpoint_is_the_address_as_given(address, expected):
    assert endpoint(address) == expected


@pytest.mark.parametrize("address", ["head", "[::1]", ":6379", "head:port"])
def test_an_address_without_a_port_is_refused(address):
    with pytest.raises(ValueError, match="--ray-address must be HOST:PORT, ray://HOST\\[:PORT\\] or auto"):
        endpoint(address)


def test_a_cluster_that_refuses_the_token_is_told_apart():
    """Ray's error joining a cluster, as ray.init raises it: a ConnectionError, its cause naming what failed."""
    refused = ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379")
    refused.__cause__ = RuntimeError("Failed to connect to GCS. Last connection error: Traceback ...\n"
                                     "ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: ...")
    assert join_failure("10.0.0.1:6379", refused).startswith("the Ray cluster at 10.0.0.1:6379 refused this "
                                                             "machine's token: set RAY_AUTH_MODE=token")
    other = ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379")
    other.__cause__ = RuntimeError("Failed to connect to GCS. Last connection error: Traceback ...\nTimeoutError")
    assert join_failure("10.0.0.1:6379", other) == (
        "the Ray cluster at 10.0.0.1:6379 answers but could not be joined (Failed to connect to Ray cluster at "
        "10.0.0.1:6379): check that the cluster's head node is running (`ray start --head --port=PORT` there), "
        "that the address names the head's port and is reachable from this machine, and that this machine has "
        "the cluster's token (RAY_AUTH_MODE=token and RAY_AUTH_TOKEN, as on the nodes)")
