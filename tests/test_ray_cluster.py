"""A real two-node Ray cluster on this machine: a head and a worker node, each in a network namespace of its own
that the test makes (a veth pair, 10.213.0.1 and 10.213.0.2), with Ray's token authentication on; an evaluation
of N = 4 models through the command line from a driver in the head's namespace, with --ray-address.

It checks that the unlearning calls ran on both nodes, that the scores equal the local executor's, that the code
the worker node ran came through Ray's runtime_env (not the repository), and that a driver with another token is
refused with one clear line. All of its traffic stays inside the two namespaces.

Needs root, `ip netns` and Ray; skipped without them, unless $UNLEARNING_MOCK_REQUIRE_NETNS=1 (CI), which turns
the skip into a failure. Everything it starts is torn down whatever the outcome: the processes in the namespaces
are killed one by one (`ray stop` would stop every Ray process on the machine), then the namespaces deleted.
"""

import collections
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.netns, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
REQUIRE = "UNLEARNING_MOCK_REQUIRE_NETNS"
HEAD_IP, WORKER_IP = "10.213.0.1", "10.213.0.2"
ADDRESS = f"{HEAD_IP}:6379"
N = 4
TAG = f"um{os.getpid()}"   # names of this run's namespaces and interfaces (an interface name: 15 characters at most)
HEAD, WORKER = f"{TAG}-head", f"{TAG}-worker"
NODES_UP = """
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="error")
deadline = time.monotonic() + 60
while len([node for node in ray.nodes() if node["Alive"]]) < 2 and time.monotonic() < deadline:
    time.sleep(0.2)
print(" ".join(sorted(node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"])))
"""


def unavailable() -> str | None:
    """Why this machine cannot run the test, or None."""
    if importlib.util.find_spec("ray") is None:
        return "Ray is not installed (make install-ray)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    return None


def cannot(reason: str) -> None:
    """Skip the test for ``reason``; fail it instead where $UNLEARNING_MOCK_REQUIRE_NETNS=1."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{REQUIRE}=1, but {reason}")
    pytest.skip(reason)


REASON = unavailable()
if REASON and os.environ.get(REQUIRE) != "1":
    pytest.skip(REASON, allow_module_level=True)


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode:
        cannot(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def connect_namespaces() -> None:
    """The two namespaces, joined by a veth pair with one address of the test subnet each."""
    for namespace in (HEAD, WORKER):
        ip("netns", "add", namespace)
        ip("-n", namespace, "link", "set", "lo", "up")
    ip("link", "add", f"{TAG}h", "type", "veth", "peer", "name", f"{TAG}w")
    for namespace, end, address in ((HEAD, f"{TAG}h", HEAD_IP), (WORKER, f"{TAG}w", WORKER_IP)):
        ip("link", "set", end, "netns", namespace)
        ip("-n", namespace, "addr", "add", f"{address}/24", "dev", end)
        ip("-n", namespace, "link", "set", end, "up")


def kill_everything_in(namespace: str) -> None:
    """SIGKILL every process in ``namespace`` until none is left (at most 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listed = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, timeout=30)
        pids = [int(pid) for pid in listed.stdout.split()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def tear_down() -> None:
    for namespace in (HEAD, WORKER):
        kill_everything_in(namespace)
    for namespace in (HEAD, WORKER):   # deleting a namespace deletes its end of the veth pair, and so the pair
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True, timeout=30)
    subprocess.run(["ip", "link", "delete", f"{TAG}h"], capture_output=True, timeout=30)   # if never moved


def in_namespace(namespace: str, command: list, env: dict, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", namespace, *command], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def ray_start(namespace: str, env: dict, cwd: Path, *options: str) -> None:
    ray = str(Path(sys.executable).parent / "ray")
    done = in_namespace(namespace, [ray, "start", "--num-cpus=1", "--disable-usage-stats", *options], env, cwd, 120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def cluster(tmp_path):
    """The running two-node cluster: the environment its nodes and drivers share (the token, Ray's folder)."""
    if REASON:
        cannot(REASON)
    ray_folder = tempfile.mkdtemp(prefix="umray-", dir="/tmp")   # short: Ray's socket paths go under it
    env = {key: value for key, value in os.environ.items()
           if key not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    env.update(RAY_TMPDIR=ray_folder, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16),
               RAY_USAGE_STATS_ENABLED="0")
    try:
        connect_namespaces()
        ray_start(HEAD, env, tmp_path, "--head", f"--node-ip-address={HEAD_IP}", "--port=6379",
                  "--include-dashboard=false")
        ray_start(WORKER, env, tmp_path, f"--address={ADDRESS}", f"--node-ip-address={WORKER_IP}")
        nodes = in_namespace(HEAD, [sys.executable, "-c", NODES_UP, ADDRESS], env, tmp_path, 120)
        assert nodes.stdout.split() == [HEAD_IP, WORKER_IP], nodes.stderr
        yield env
    finally:
        tear_down()
        shutil.rmtree(ray_folder, ignore_errors=True)


def recording_submission(folder: Path, one_step_source: str) -> Path:
    """One step of retain fine-tuning that records, per call, its network namespace and where the evaluator's
    code it runs was imported from (files under ``folder``, which every node sees: one machine)."""
    (folder / "one_step.py").write_text(one_step_source)
    (folder / "calls").mkdir()
    path = folder / "recorder.py"
    path.write_text(textwrap.dedent(f"""
        import json, os
        from pathlib import Path
        import torch
        import unlearning_mock.mock_evaluator as code
        from one_step import unlearning as one_step

        def unlearning(net, retain_loader, forget_loader, validation_loader):
            record = {{"netns": os.readlink("/proc/self/ns/net"), "code": code.__file__}}
            call = Path({str(folder / "calls")!r}, f"{{torch.initial_seed()}}-{{os.getpid()}}.json")
            call.write_text(json.dumps(record))
            return one_step(net, retain_loader, forget_loader, validation_loader)
    """))
    return path


def evaluate(submission: Path, cache: Path, out: Path, *options: str) -> list:
    """The command line of the N = 4 evaluation (run in a namespace or here)."""
    return [sys.executable, "-m", "mock_evaluator", "--submission", str(submission), "--num-models", str(N),
            "--dataset", "digits", "--no-baseline", "--attack-models", str(N), "--quiet", "--cache-dir", str(cache),
            "--output-dir", str(out), "--run-name", "run", *options]


def scores(out: Path) -> dict:
    methods = json.loads((out / "run" / "results.json").read_text())["methods"]
    return {name: (figures["final_score"], figures["epsilons"]) for name, figures in methods.items()}


def namespace_of(name: str | None) -> str:
    """The network namespace called ``name`` (None: this process's) as /proc/PID/ns/net names it."""
    if name is None:
        return os.readlink("/proc/self/ns/net")
    return f"net:[{os.stat(f'/run/netns/{name}').st_ino}]"


def test_an_evaluation_on_a_two_node_cluster_with_token_authentication(tmp_path, cache_dir, original, one_step_source,
                                                                      cluster):
    submission = recording_submission(tmp_path, one_step_source)
    log = tmp_path / "local.log"
    with log.open("w") as output:   # the local executor's run, meanwhile
        local = subprocess.Popen(evaluate(submission, cache_dir, tmp_path / "local", "--executor", "local"), cwd=ROOT,
                                 stdout=output, stderr=output, start_new_session=True)
    try:
        shutil.copytree(Path(cache_dir) / "original", tmp_path / "cluster-cache" / "original")   # the rest made anew
        on_cluster = in_namespace(HEAD, evaluate(submission, tmp_path / "cluster-cache", tmp_path / "cluster",
                                                 "--executor", "ray", "--ray-address", ADDRESS), cluster, ROOT, 600)
        assert on_cluster.returncode == 0, on_cluster.stderr
        assert local.wait(timeout=600) == 0, log.read_text()
    finally:
        if local.poll() is None:
            os.killpg(local.pid, signal.SIGKILL)
    assert scores(tmp_path / "cluster") == scores(tmp_path / "local")

    records = [json.loads(path.read_text()) for path in (tmp_path / "calls").iterdir()]
    per_node = collections.Counter(record["netns"] for record in records)
    head, worker, here = (per_node[namespace_of(HEAD)], per_node[namespace_of(WORKER)], per_node[namespace_of(None)])
    print(f"unlearning calls: head node {head}, worker node {worker} (local executor: {here})")
    assert head >= 1 and worker >= 1 and head + worker == N and here == N
    for record in records:   # on both nodes, the code came through runtime_env (a copy in Ray's folder)
        code = Path(record["code"])
        if record["netns"] != namespace_of(None):
            assert code.is_relative_to(cluster["RAY_TMPDIR"]) and "runtime_resources" in code.parts, code
            assert not code.is_relative_to(ROOT)

    # a driver with another token (Ray's own retries, 20 s by default, cut to 2)
    stranger = {**cluster, "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_gcs_server_port_wait_time_s": "2"}
    refused = in_namespace(HEAD, evaluate(submission, tmp_path / "cluster-cache", tmp_path / "stranger",
                                          "--executor", "ray", "--ray-address", ADDRESS), stranger, ROOT, 300)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        f"ERROR: the Ray cluster at {ADDRESS} refused this machine's token: set RAY_AUTH_MODE=token and the "
        "cluster's token (RAY_AUTH_TOKEN, or the file ~/.ray/auth_token) as on its nodes")
