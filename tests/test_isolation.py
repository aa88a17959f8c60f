"""Isolation: a method cannot change another method's result nor its own measurement, each
method's code is its own, what a call starts ends with it, and every failure is blamed on the right party
-- under the local process pool and under Ray (skipped without Ray), on real digits runs with small N."""

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from testing_helpers import evaluation_on, write

from unlearning_mock.mock_evaluator.cli import main
from unlearning_mock.mock_evaluator.engine import jobs as J
from unlearning_mock.mock_evaluator.engine.isolation import child_pids
from unlearning_mock.mock_evaluator.engine.limits import parse_memory
from unlearning_mock.mock_evaluator.engine.protocol import EVALUATOR, SUBMISSION, EvaluatorFailure
from unlearning_mock.mock_evaluator.evaluate import Evaluation, SubmissionError
from unlearning_mock.mock_evaluator.method import method_from_spec
from unlearning_mock.mock_evaluator.sources import PROJECT_PACKAGES, PROJECT_ROOT
from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.original import checked, load_or_train_original, original_cache_path
from unlearning_mock.starter_kit.training import Recipe

pytestmark = pytest.mark.isolation

N = 4
RUN_TIMEOUT = 120.0   # seconds a call may take: these return at once, but workers start slowly on a loaded machine
ENGINES = ["local", "ray"]
ROOT = Path(__file__).resolve().parents[1]
UNTOUCHED = "def unlearning(net, retain_loader, forget_loader, validation_loader):\n    {body}\n    return net\n"
BAD = {  # what each method does to its process; it returns the weights untouched
    "no-grad": "torch.set_grad_enabled(False)",
    "zero-loss": "torch.nn.functional.cross_entropy = lambda *a, **k: torch.zeros((), requires_grad=True)",
    "float64": "torch.set_default_dtype(torch.float64)",
    "noisy-hook": "net.register_forward_hook(lambda module, inputs, out: out + 3 * torch.randn_like(out))",
    "noisy-metric": "import unlearning_mock.mock_evaluator.engine.figures as M\n"
                    "    M.logit_scaled_confidence = lambda logits, targets: np.random.randn(len(targets))",
    "soft-softmax": "torch.log_softmax = lambda x, dim=-1, **k: torch.zeros_like(x)\n"
                    "    torch.nn.functional.softmax = lambda x, dim=-1, **k: torch.full_like(x, 0.1)\n"
                    "    torch.nn.functional.log_softmax = lambda x, dim=-1, **k: torch.zeros_like(x)",
}


def untouched(path: Path, body: str = "pass") -> str:
    return write(path, "import numpy as np\nimport torch\n\n" + UNTOUCHED.format(body=body))


def fresh_runs(evaluation, method) -> dict:
    """The method's runs computed now (its cached runs deleted first)."""
    for folder in (evaluation.cache / "runs").glob(f"digits-{method.slug}-*"):
        shutil.rmtree(folder)
    return evaluation.runs(method)


def assert_figures_of_the_original(figures: dict, original: dict) -> None:
    for name, value in original.items():
        np.testing.assert_allclose(figures[name], np.broadcast_to(value, figures[name].shape), rtol=1e-5, atol=1e-5,
                                   err_msg=name)


@pytest.mark.parametrize("engine", ENGINES)
def test_no_method_changes_another_result_or_its_own_measurement(tmp_path, cache_dir, original, request, engine):
    evaluation = evaluation_on(request.getfixturevalue(f"{engine}_executor"), cache_dir, N, run_timeout=RUN_TIMEOUT)
    baseline = method_from_spec("baseline", baseline_function=evaluation.setting.baseline)
    before = fresh_runs(evaluation, baseline)
    for name, body in BAD.items():
        method = method_from_spec(untouched(tmp_path / f"{name.replace('-', '_')}.py", body))
        # its own figures are those of the weights it returned: the untouched original's
        assert_figures_of_the_original(fresh_runs(evaluation, method), evaluation.original_figures)
    after = fresh_runs(evaluation, baseline)  # in the same workers, after every bad method
    for name in before:
        if name != "seconds":
            assert np.array_equal(before[name], after[name]), name
    assert before["forget_conf"].shape == (N, 126) and np.isfinite(before["seconds"]).all()


@pytest.mark.parametrize("engine", ENGINES)
def test_two_folders_each_with_its_own_helpers(tmp_path, cache_dir, original, request, engine):
    evaluation = evaluation_on(request.getfixturevalue(f"{engine}_executor"), cache_dir, N, run_timeout=RUN_TIMEOUT)
    scaled = {}
    for folder, scale in (("b", 0.0), ("a", 1.0)):  # b's helper is loaded first
        write(tmp_path / folder / "helpers.py", f"SCALE = {scale}\n")
        path = write(tmp_path / folder / f"mine_{folder}.py", """
            import torch
            from helpers import SCALE

            def unlearning(net, retain_loader, forget_loader, validation_loader):
                with torch.no_grad():
                    net.fc.weight.mul_(SCALE)
        """)
        scaled[folder] = fresh_runs(evaluation, method_from_spec(path))["retain_acc"]
    assert np.all(scaled["a"] == evaluation.original_figures["retain_acc"])  # a ran its own helper: SCALE 1
    assert np.all(scaled["b"] < 0.5)  # b's: fc zeroed, one class for every input


def test_a_call_is_timed_and_limited_from_its_module_load(tmp_path, cache_dir, original, local_executor):
    """Top-level code counts as the call (it runs after the clock starts, in the call's child process);
    the driver never runs it; the children get the job's threads."""
    marker = tmp_path / "pids"
    path = write(tmp_path / "slow_import.py", f"""
        import os, time
        import torch
        open({str(marker)!r}, "a").write(f"{{os.getpid()}} {{torch.get_num_threads()}}\\n")
        time.sleep(0.5)

        def unlearning(net, retain_loader, forget_loader, validation_loader):
            return net
    """)
    evaluation = evaluation_on(local_executor, cache_dir, N, run_timeout=RUN_TIMEOUT)
    runs = fresh_runs(evaluation, method_from_spec(path))
    assert np.all(runs["seconds"] >= 0.5)
    loaded = [line.split() for line in marker.read_text().splitlines()]
    assert len(loaded) == N + 1  # once to check it (before any run), once per call
    assert str(os.getpid()) not in {pid for pid, _ in loaded} and len({pid for pid, _ in loaded}) == N + 1
    assert {threads for _, threads in loaded} == {"1"}


@pytest.mark.parametrize("engine", ENGINES)
def test_what_a_call_starts_ends_with_it(tmp_path, cache_dir, original, request, engine):
    """Processes in its group, in a session of their own, orphaned by a shell; a thread that holds a pipe open
    and would run on; and DataLoader workers (the worker is not daemonic, so they can start)."""
    pids, held, ready = tmp_path / "pids", tmp_path / "held", tmp_path / "ready"
    os.mkfifo(held)
    path = write(tmp_path / "leaves_things_behind.py", f"""
        import os, subprocess, threading, time
        import torch
        from torch.utils.data import DataLoader

        def hold_the_pipe(opened):
            os.open({str(held)!r}, os.O_RDONLY | os.O_NONBLOCK)
            opened.set()
            time.sleep(600)

        def unlearning(net, retain_loader, forget_loader, validation_loader):
            seen = sum(len(x) for x, _ in DataLoader(retain_loader.dataset, batch_size=256, num_workers=2))
            assert seen == len(retain_loader.dataset)
            started = [subprocess.Popen(["sleep", "300"]), subprocess.Popen(["sleep", "301"], start_new_session=True)]
            subprocess.run(["sh", "-c", "sleep 302 & echo $! > {pids}.orphan"], start_new_session=True)
            open({str(pids)!r}, "a").write("".join(f"{{p.pid}}\\n" for p in started))
            opened = threading.Event()
            threading.Thread(target=hold_the_pipe, args=(opened,)).start()
            assert opened.wait(60), "the thread never opened the pipe"
            open({str(ready)!r}, "a").write("x")
            return net
    """)
    evaluation = evaluation_on(request.getfixturevalue(f"{engine}_executor"), cache_dir, 2, run_timeout=RUN_TIMEOUT)
    assert len(fresh_runs(evaluation, method_from_spec(path))["seconds"]) == 2
    assert ready.read_text() == "xx"   # each call's thread held the pipe's reading end when its call returned
    left = [int(p) for p in pids.read_text().split()] + [int(p) for p in Path(f"{pids}.orphan").read_text().split()]
    assert len(left) == 2 * 2 + 1  # the orphan file holds the last call's
    assert eventually(lambda: not has_reader(held)), "a call's thread still holds the pipe open"
    for pid in left:
        assert eventually(lambda: not alive(pid)), f"process {pid} that a call started is still running"


def has_reader(fifo: Path) -> bool:
    """Whether some process holds ``fifo``'s reading end (a non-blocking open for writing fails with ENXIO if none)."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError as error:
        if error.errno == errno.ENXIO:
            return False
        raise
    return True


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def eventually(condition, seconds: float = 30.0) -> bool:
    """Whether ``condition()`` holds within ``seconds`` (checked at once, then every 50 ms)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("engine", ENGINES)
def test_a_memory_bomb_is_named_and_the_others_are_scored(tmp_path, cache_dir, original, request, engine):
    evaluation = evaluation_on(request.getfixturevalue(f"{engine}_executor"), cache_dir, 2, run_timeout=RUN_TIMEOUT, run_memory=10**9)
    bomb = method_from_spec(untouched(tmp_path / "bomb.py", "kept = [torch.ones(2**25) for _ in range(10**4)]"))
    with pytest.raises(SubmissionError) as caught:
        fresh_runs(evaluation, bomb)
    assert re.search(r"bomb failed on model [01]: the submission ran out of memory; a call may use 1 GB",
                     str(caught.value))
    assert len(fresh_runs(evaluation, method_from_spec(untouched(tmp_path / "after.py")))["seconds"]) == 2


def test_run_memory_takes_a_unit():
    assert parse_memory("2GB") == 2 * 10**9 and parse_memory("512MiB") == 512 * 2**20
    assert parse_memory("1.5 gb") == 1.5e9
    for wrong in ("2", "-1GB", "2 XB", "GB"):
        with pytest.raises(ValueError, match="with a unit"):
            parse_memory(wrong)


# -- blame ---------------------------------------------------------------------------------------------
@pytest.fixture
def inline(cache_dir, original):
    """An evaluation on the in-process executor (its phases called one by one: no oracles are trained)."""
    return evaluation_on(None, cache_dir, 2, run_timeout=60.0, executor="inline", oracle_chunk=3)


@pytest.mark.parametrize("broken", ["figures", "oracles", "timing"])
def test_the_evaluators_own_failures_are_not_blamed_on_the_submission(tmp_path, inline, monkeypatch, broken):
    def train(*args, fuse=True, **kwargs):  # the oracles train fused, the timing retrain one model at a time
        raise MemoryError("the training ran out of memory")

    if broken == "figures":
        monkeypatch.setattr(J, "weights_figures", lambda *a: 1 / 0)
    else:
        monkeypatch.setattr(J, "train_models", train)
    phase = {"figures": lambda: fresh_runs(inline, method_from_spec(untouched(tmp_path / "fine.py"))),
             "oracles": lambda: inline.oracles("oracle-A"), "timing": inline.retrain_seconds}[broken]
    with pytest.raises(EvaluatorFailure, match="not the submission's fault") as caught:
        phase()
    assert "unlearning() raised" not in str(caught.value)


def test_the_command_says_evaluator_error_with_exit_code_3(tmp_path, cache_dir, original, monkeypatch, capsys):
    def fail(self):
        raise EvaluatorFailure("oracle-A failed on oracles 1000..1001: the process running the oracle training died")

    monkeypatch.setattr(Evaluation, "run", fail)
    assert main(["--dataset", "digits", "--no-baseline", "--num-models", "2", "--cache-dir", str(cache_dir), "--quiet", "--submission",
                 untouched(tmp_path / "fine.py"), "--output-dir", str(tmp_path), "--executor", "inline"]) == 3
    err = capsys.readouterr().err
    assert "EVALUATOR ERROR: oracle-A failed" in err and "SUBMISSION ERROR" not in err


def test_inline_a_real_ctrl_c_stops_the_evaluation(tmp_path, inline):
    """--executor inline: an interrupt is the user's (the command exits 130), not the method's failure."""
    sends = untouched(tmp_path / "interrupted.py", "import os, signal, time\n"
                                                   "    os.kill(os.getpid(), signal.SIGINT); time.sleep(5)")
    # SIGINT raises KeyboardInterrupt as in a terminal, even when the tests run as a background job (SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            inline.runs(method_from_spec(sends))
    finally:
        signal.signal(signal.SIGINT, previous)


def _grandchildren(pid: int, min_age: float = 0.05) -> set[int]:
    """The children of ``pid``'s children (Linux) that are forks of them -- under the local executor, the job
    processes its workers fork -- not programs a worker ran (a library's short-lived ``ldconfig``, say): a fork
    keeps its parent's command line, and has lived ``min_age`` seconds (a program's process carries its parent's
    command line too, between its fork and its exec: the worker's imports run ``ldconfig -p``; a job lives for
    seconds)."""
    found = set()
    for child in child_pids(pid):
        command = _command_line(child)
        found |= {grandchild for grandchild in child_pids(child)
                  if command is not None and _command_line(grandchild) == command
                  and _age(grandchild) >= min_age}
    return found


def _age(pid: int) -> float:
    """Seconds since ``pid`` started (Linux, to the clock tick); -1 once it has ended."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
    except OSError:
        return -1.0
    started = int(stat[stat.rindex(")") + 2:].split()[19])   # field 22, starttime, in clock ticks since boot
    return uptime - started / os.sysconf("SC_CLK_TCK")


def _command_line(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:  # it ended meanwhile
        return None


def _command(tmp_path, cache_dir, *extra, mode: tuple = ()) -> subprocess.Popen:
    """The command (``mode``: e.g. ``("leaderboard",)``; default: evaluate) in a process of its own, SIGINT at its
    default (a runner that started the tests with SIGINT ignored, as a background job, must not pass that on)."""
    command = [sys.executable, "-m", "mock_evaluator", *mode, "--dataset", "digits", "--cache-dir", str(cache_dir),
               "--output-dir", str(tmp_path), "--quiet", "--no-baseline", *extra]
    return subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.fixture(scope="module")
def cached_oracles(cache_dir, original, local_executor):
    """Oracle sets A and B in the cache for a command run with these arguments, so that it starts with the timing
    retrain: the session's N = 8, seed 0 sets (those of tests/test_evaluator.py and tests/test_api.py: already
    there in a whole run; trained here, in the module's workers, when this module runs alone)."""
    evaluation = evaluation_on(local_executor, cache_dir, 8)
    evaluation.oracles("oracle-A"), evaluation.oracles("oracle-B")
    return ["--num-models", "8"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker's child processes in /proc")
@pytest.mark.parametrize("phase", ["oracle-A", "timing"])
def test_a_killed_oracle_or_timing_job_is_an_evaluator_error_with_exit_code_3(tmp_path, cache_dir, cached_oracles,
                                                                               phase):
    """Under the local executor, the first process the worker forks -- training oracle set A (a seed with
    nothing cached) or timing the retrain (the oracles cached) -- is killed, as the machine's OOM killer
    would: the evaluator's failure, never the submission's."""
    seed = ["--num-models", "2", "--seed", "101", "--oracle-chunk", "2"] if phase == "oracle-A" else cached_oracles
    process = _command(tmp_path, cache_dir, "--submission", "baseline", "--workers", "1", *seed)
    try:
        deadline, killed = time.monotonic() + 600, False
        while not killed and process.poll() is None and time.monotonic() < deadline:
            forked = _grandchildren(process.pid)
            if forked:
                assert len(forked) == 1, f"the worker forked {sorted(forked)}, exit code {process.poll()}"
                try:
                    os.kill(forked.pop(), signal.SIGKILL)
                    killed = True
                except ProcessLookupError:  # it ended between the scan and the kill: wait for the next one
                    pass
            time.sleep(0.01)
        assert killed, f"no forked process of the worker was seen alive, exit code {process.poll()}"
        _, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    says = {"oracle-A": "EVALUATOR ERROR: oracle-A failed on oracles ",
            "timing": "EVALUATOR ERROR: timing one ordinary retrain failed (not the submission's fault)"}[phase]
    assert process.returncode == 3, err[-2000:]
    assert says in err and "died (killed by signal SIGKILL)" in err and "SUBMISSION ERROR" not in err, err[-2000:]


def test_inline_a_real_ctrl_c_ends_the_command_with_exit_code_130(tmp_path, cache_dir, cached_oracles):
    """``--executor inline``: SIGINT while a method's call runs ends the command with 130 (the README's promise),
    not as the method's failure."""
    ready = tmp_path / "ready"
    path = untouched(tmp_path / "waits.py", f"import time; open({str(ready)!r}, 'w').write('x'); time.sleep(600)")
    process = _command(tmp_path, cache_dir, "--submission", path, "--executor", "inline", *cached_oracles)
    err = _interrupted_when(process, ready.exists)
    assert "SUBMISSION ERROR" not in err and "KeyboardInterrupt" not in err, err[-2000:]


def _interrupted_when(process: subprocess.Popen, ready) -> str:
    """Send ``process`` SIGINT as soon as ``ready()`` holds (a Ctrl-C); check that it ended with exit code 130 and
    INTERRUPTED; return its stderr."""
    try:
        deadline = time.monotonic() + 600
        while not ready() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ready() and process.poll() is None, f"not ready before the command ended: exit code {process.poll()}"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130 and "INTERRUPTED" in err, err[-2000:]
    return err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker's child processes in /proc")
def test_a_real_ctrl_c_ends_the_leaderboard_with_exit_code_130(tmp_path, cache_dir, cached_oracles):
    """``leaderboard``: SIGINT while the workers run ends it as it ends an evaluation -- exit 130 and INTERRUPTED,
    not a traceback (a long leaderboard is the run a user is most likely to stop and resume)."""
    process = _command(tmp_path, cache_dir, "--methods", "ft-kaggle", "--workers", "1", *cached_oracles,
                       mode=("leaderboard",))
    err = _interrupted_when(process, lambda: bool(_grandchildren(process.pid)))   # a worker has forked a job
    assert "Traceback" not in err and "SUBMISSION ERROR" not in err, err[-2000:]


def test_ray_errors_are_blamed_where_they_belong():
    rx = pytest.importorskip("ray.exceptions")
    from unlearning_mock.mock_evaluator.engine.ray_engine import ray_failure

    method = method_from_spec("baseline")
    call = J.UnlearningJob(None, method, 3, (0,))
    oracles = J.OracleJob(None, (10, 11), 0)
    oom = rx.OutOfMemoryError("Task was killed due to the node running low on memory.")
    assert (ray_failure(call, oom).fault, ray_failure(oracles, oom).fault) == (SUBMISSION, EVALUATOR)
    assert "model 3: the node ran out of memory while the submission ran" in ray_failure(call, oom).error
    for error, says in ((rx.NodeDiedError("node gone"), "the Ray node running it died"),
                        (rx.ObjectLostError("ab" * 14, None, ""), "Ray lost its result"),
                        (rx.WorkerCrashedError(), "the evaluator's worker process running the submission died")):
        result = ray_failure(call, error)
        assert result.fault == EVALUATOR and says in result.error and result.error.startswith("model 3: ")
    with pytest.raises(EvaluatorFailure, match="the evaluator's own code failed in a Ray task"):
        ray_failure(call, rx.RayTaskError("run_task", "Traceback ...", ValueError("bug")))


# -- what the cache keys cover -------------------------------------------------------------------------
def test_editing_the_evaluators_figure_code_changes_the_cache_key(tmp_path):
    copy = tmp_path / "project"
    for name in PROJECT_PACKAGES:
        shutil.copytree(PROJECT_ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    same = J.code_fingerprint(copy)
    assert same == J.code_fingerprint(PROJECT_ROOT)
    report = copy / "mock_evaluator" / "reports" / "report.py"
    report.write_text(report.read_text() + "\n# an unrelated edit\n")
    assert J.code_fingerprint.__wrapped__(copy) == same
    for edited in ("mock_evaluator/engine/figures.py", "starter_kit/data.py", "starter_kit/training.py"):
        target = copy / edited
        text = target.read_text()
        target.write_text(text + "\n# a fix\n")
        assert J.code_fingerprint.__wrapped__(copy) != same, edited
        target.write_text(text)


def test_the_original_models_file_is_checksummed(tmp_path, digits):
    recipe = Recipe(epochs=1)
    logged = []
    load_or_train_original(digits, SmallResNet, recipe, cache_dir=tmp_path, log=logged.append)
    path = original_cache_path(digits, SmallResNet, recipe, 0, tmp_path)
    assert checked(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit inside the weights
    path.write_bytes(bytes(data))
    assert not checked(path)
    logged.clear()
    load_or_train_original(digits, SmallResNet, recipe, cache_dir=tmp_path, log=logged.append)
    assert any("fails its checksum" in line for line in logged) and checked(path)


# -- Ray: the package a cluster's workers import ---------------------------------------------------------
def test_ray_ships_the_package_a_remote_worker_imports(tmp_path):
    pytest.importorskip("ray")
    from unlearning_mock.mock_evaluator.engine.ray_engine import project_runtime_env

    env = project_runtime_env(tmp_path)
    (package,) = env["py_modules"]
    assert Path(package).name == "unlearning_mock"
    assert {p.name for p in Path(package).iterdir()} >= set(PROJECT_PACKAGES)
    # a Python that sees only what is shipped (no editable install) imports the engine from it
    probe = ("import sys; sys.meta_path = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
             "import unlearning_mock.mock_evaluator.engine.jobs as j; print(j.__file__)")
    shipped = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": str(Path(package).parent)})
    assert shipped.returncode == 0, shipped.stderr[-2000:]
    assert shipped.stdout.strip().startswith(str(package))

