"""Run the evaluator's jobs on a Ray cluster (``--executor ray``): one Ray task per job.

Behind the same :class:`~mock_evaluator.engine.protocol.Executor` protocol as the local process pool, so the
evaluator's phases, its cache layout and its keys do not change: the driver (the machine running
``python -m mock_evaluator``) receives every result and writes it to the cache exactly as with the
local executor, and a run can switch executors and resume.

* **Isolation.** A Ray worker process is a pristine worker (:func:`mock_evaluator.engine.worker.start_worker`):
  it runs each job in a child process of its own (:mod:`~mock_evaluator.engine.isolation`), which enforces
  the call's time and memory limits and hands back only weights; the worker computes the figures. So a hung
  call, an exit or a dead call process is an ordinary failed result, as with the local pool.
* **Resources.** Each task reserves ``cpus_per_job`` CPUs and ``gpus_per_job`` GPUs (a fraction, e.g.
  0.25, lets four jobs share a GPU). At most as many tasks as the cluster has room for are in flight;
  results are taken as they finish with ``ray.wait``.
* **Shared objects.** The setting (data, model class, recipe) and the original model's weights go into
  the object store once per evaluation (``ray.put``); each task gets the references, and each Ray worker
  process fetches them once and keeps them (:func:`mock_evaluator.engine.jobs.provide_shared`).
* **Which Ray.** Without an address a fresh local instance is started, whatever cluster Ray would find on
  this machine (a running one, or the stale file of one that was not stopped). An address is first checked
  with a plain connection attempt (:func:`check_answers`): one that does not answer, or a cluster that refuses
  this machine's token, ends the run with one line saying what to check.
* **Code.** Starting a local instance, the workers see the driver's files. Joining a cluster
  (``--ray-address`` or ``$RAY_ADDRESS``), the project's package ``unlearning_mock`` travels with the job
  through Ray's ``runtime_env`` (``py_modules``, :func:`project_runtime_env`); a submission given as a *file*
  must then lie at the same path on every node (a shared file system) -- or be given as a module of the
  project (``submission.alif``).
* **Failures.** Tasks are never retried (a submission that kills its process would only do it again).
  Besides the failures every worker reports itself, Ray's own errors are blamed where they belong
  (:func:`ray_failure`): the node running out of memory during a call is the submission's; a crashed
  worker, a dead node or a lost object is the evaluator's engine failing, and the run stops with a message
  saying to run it again.

Ray is optional (``pip install -r requirements-ray.txt``); nothing imports this module unless
``--executor ray`` is asked for.
"""

from __future__ import annotations

import copy
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

from unlearning_mock.mock_evaluator.engine.jobs import ProbeJob, UnlearningJob
from unlearning_mock.mock_evaluator.engine.protocol import (EVALUATOR, SUBMISSION, EvaluatorFailure, JobResult, failed,
                                                            worker_died)
from unlearning_mock.mock_evaluator.engine.worker import start_worker
from unlearning_mock.mock_evaluator.sources import PACKAGE, PROJECT_PACKAGES, PROJECT_ROOT

RAY_MISSING = ("--executor ray needs Ray, which is not installed in this environment: install it with "
               "`make install-ray` (or `pip install -r requirements-ray.txt`), or use --executor local")


def import_ray():
    """The ``ray`` module, or a ValueError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError(RAY_MISSING) from None
    return ray


CONNECT_SECONDS = 30.0   # how long the check of a cluster's address waits for an answer
RAY_CLIENT_PORT = 10001   # Ray Client's port when a ray:// address names none
CLUSTER_CHECKS = ("check that the cluster's head node is running (`ray start --head --port=PORT` there), that the "
                  "address names the head's port and is reachable from this machine, and that this machine has the "
                  "cluster's token (RAY_AUTH_MODE=token and RAY_AUTH_TOKEN, as on the nodes)")


def running_cluster() -> str:
    """The address ``auto`` stands for, as Ray finds it: ``$RAY_ADDRESS``, else the cluster last started with
    ``ray start`` on this machine (the ``ray_current_cluster`` file in Ray's temporary folder), else a running
    head."""
    from ray._private.services import get_ray_address_from_environment

    try:
        return get_ray_address_from_environment("auto", None)
    except ConnectionError:
        raise ValueError("--ray-address auto: no Ray cluster was started on this machine; start one "
                         "(`ray start --head`) or give its head's address as HOST:PORT") from None


def endpoint(address: str) -> tuple[str, int]:
    """The host and port that a cluster address names: ``HOST:PORT``, ``[IPv6]:PORT`` or ``ray://HOST[:PORT]``
    (Ray Client, port 10001 by default)."""
    rest = address.removeprefix("ray://")
    target = rest.split("/", 1)[0]
    host, _, port = target.rpartition(":")
    if not host or "]" in port:  # no port given
        host, port = target, str(RAY_CLIENT_PORT) if rest != address else ""
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise ValueError(f"--ray-address must be HOST:PORT, ray://HOST[:PORT] or auto, got {address!r}")
    return host, int(port)


def check_answers(address: str, seconds: float = CONNECT_SECONDS) -> None:
    """A ValueError in one line unless something accepts a TCP connection at ``address`` as given, within
    ``seconds``. Done before Ray is asked: Ray retries for minutes, and dials a loopback address as this
    machine's network address."""
    named = address
    if address == "auto":
        address = running_cluster()
        named = f"auto = {address}"
    host, port = endpoint(address)
    try:
        socket.create_connection((host, port), timeout=seconds).close()
    except OSError as error:
        why = f"nothing answered within {seconds:g} s" if isinstance(error, TimeoutError) else _first_line(error)
        raise ValueError(f"no Ray cluster answers at {named} ({why}): {CLUSTER_CHECKS}") from None


def join_failure(address: str, error: Exception) -> str:
    """One line for Ray's error joining the cluster at ``address`` (which answered :func:`check_answers`)."""
    told = f"{type(error).__name__} {error} {error.__cause__}"
    if "AuthenticationError" in told or "InvalidAuthToken" in told:
        return (f"the Ray cluster at {address} refused this machine's token: set RAY_AUTH_MODE=token and the "
                "cluster's token (RAY_AUTH_TOKEN, or the file ~/.ray/auth_token) as on its nodes")
    return f"the Ray cluster at {address} answers but could not be joined ({_first_line(error)}): {CLUSTER_CHECKS}"


def _first_line(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text.strip().splitlines()[0]


def project_runtime_env(staging: Path) -> dict:
    """What a remote Ray worker needs to import ``unlearning_mock.*``, shipped as ``py_modules``: in an
    installed wheel the package folder itself (``site-packages/unlearning_mock``); in a clone, whose folders
    are mapped onto the package by the editable install, a copy of them under ``staging/unlearning_mock``."""
    if PROJECT_ROOT.name == PACKAGE:
        package = PROJECT_ROOT
    else:
        package = Path(staging) / PACKAGE
        for name in PROJECT_PACKAGES:
            shutil.copytree(PROJECT_ROOT / name, package / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return {"py_modules": [str(package)], "excludes": ["__pycache__", "*.pyc"]}


_fetched: dict[str, tuple] = {}   # in a Ray worker: the shared objects of the current evaluation


def _run_task(job, shared: list, threads: int) -> JobResult:
    """The body of one Ray task: make the shared objects available (fetched once per worker), run the job
    in a child process of this (pristine) worker."""
    import ray

    from unlearning_mock.mock_evaluator.engine import jobs

    start_worker(threads, own_process=False)
    if shared:  # a job of an evaluation (not a probe, which needs nothing)
        evaluation = shared[0].hex()
        if evaluation not in _fetched:
            _fetched.clear()
            # deep copies: arrays from the object store are read-only views, and a submission may write to its data
            _fetched[evaluation] = tuple(copy.deepcopy(value) for value in ray.get(shared))
        jobs.provide_shared(job.context, *_fetched[evaluation])
    return jobs.run_job(job)


def ray_failure(job, error: Exception) -> JobResult:
    """Ray's error getting ``job``'s result, as a failed result blamed on whom it belongs; the evaluator's
    own code raising in the task is an :class:`EvaluatorFailure`."""
    from ray import exceptions as rx

    call = isinstance(job, (UnlearningJob, ProbeJob))
    again = "; finished results are saved: run the same command again to continue"
    if isinstance(error, rx.RayTaskError):
        raise EvaluatorFailure(f"{job.describe()}: the evaluator's own code failed in a Ray task (not the "
                               f"submission's fault):\n{error}") from None
    if isinstance(error, rx.OutOfMemoryError):
        return failed(job, f"the node ran out of memory while {job.subject} ran, and Ray's memory monitor stopped "
                           "its task (--run-memory limits a call; the node had less to give)" + ("" if call else again),
                      SUBMISSION if call else EVALUATOR)
    if isinstance(error, rx.NodeDiedError):
        return failed(job, "the Ray node running it died (not the submission's doing as far as Ray can tell)" + again,
                      EVALUATOR)
    if isinstance(error, rx.ObjectLostError):
        return failed(job, "Ray lost its result (the node holding it died or its object store was full)" + again,
                      EVALUATOR)
    if isinstance(error, rx.WorkerCrashedError):
        return worker_died(job, None)
    return failed(job, f"Ray failed to run it: {type(error).__name__}: {error}" + again, EVALUATOR)


class RayExecutor:
    """Jobs as Ray tasks; see the module docstring. ``address``: a cluster to join (None: ``$RAY_ADDRESS``
    if set, else ``local``: a fresh local instance -- never a cluster that ``ray start`` left on this machine);
    an address that does not answer is a ValueError within :data:`CONNECT_SECONDS`. If Ray is already
    initialised in this process it is used as is (and left running by :meth:`close`). ``init_options`` go to
    ``ray.init`` (e.g. ``num_cpus``)."""

    def __init__(self, address: str | None = None, gpus_per_job: float = 0.0, cpus_per_job: float = 1.0,
                 max_in_flight: int | None = None, init_options: dict | None = None):
        if gpus_per_job < 0 or cpus_per_job <= 0:
            raise ValueError(f"--gpus-per-job must be >= 0 and cpus per job > 0, got {gpus_per_job}, {cpus_per_job}")
        ray = import_ray()
        self._ray = ray
        self.startup_seconds = 0.0
        self._owns_ray = not ray.is_initialized()
        self._staging = None   # a copy of the project shipped to a cluster (a clone's folders), removed by close
        if self._owns_ray:
            address = address or os.environ.get("RAY_ADDRESS") or "local"
            options = {"include_dashboard": False, "logging_level": "warning", **(init_options or {})}
            start = time.perf_counter()
            if address == "local":  # never a cluster found on this machine (a running one, or a stale file of one)
                ray.init(address="local", **options)
            else:
                self._join(address, options)
            self.startup_seconds = time.perf_counter() - start
        resources = ray.cluster_resources()
        slots = int(resources.get("CPU", 1) // cpus_per_job)
        if gpus_per_job > 0:
            if resources.get("GPU", 0) < gpus_per_job:
                raise ValueError(f"--gpus-per-job {gpus_per_job}: the Ray cluster has {resources.get('GPU', 0)} GPU(s)")
            slots = min(slots, int(resources["GPU"] // gpus_per_job + 1e-9))
        self.workers = max(1, slots)
        self.max_in_flight = max_in_flight or self.workers
        self._threads = max(1, int(cpus_per_job))
        self._task = ray.remote(_run_task).options(num_cpus=cpus_per_job, num_gpus=gpus_per_job, max_retries=0)
        self._shared: dict = {}   # context -> [setting ref, original-state ref]

    def _join(self, address: str, options: dict) -> None:
        """Join the cluster at ``address``, the project's package shipped through ``runtime_env``; a ValueError
        in one line when the address does not answer (checked before Ray is asked) or refuses this machine."""
        check_answers(address)
        self._staging = tempfile.mkdtemp(prefix="unlearning-mock-ray-")
        try:
            self._ray.init(address=address, runtime_env=project_runtime_env(Path(self._staging)), **options)
        except BaseException as error:
            self.close()
            if isinstance(error, (ConnectionError, self._ray.exceptions.AuthenticationError)):
                raise ValueError(join_failure(address, error)) from None
            raise

    def _shared_refs(self, context) -> list:
        if context not in self._shared:
            from unlearning_mock.mock_evaluator.engine.jobs import shared_objects

            self._shared = {context: [self._ray.put(value) for value in shared_objects(context)]}
        return self._shared[context]

    def map_unordered(self, jobs: Iterable) -> Iterator[tuple[object, JobResult]]:
        ray = self._ray
        todo = list(jobs)[::-1]
        pending: dict = {}   # ref -> job
        try:
            while todo or pending:
                while todo and len(pending) < self.max_in_flight:
                    job = todo.pop()
                    shared = self._shared_refs(job.context) if job.context is not None else None
                    pending[self._task.remote(job, shared, self._threads)] = job
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    job = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as error:
                        result = ray_failure(job, error)
                    yield job, result
        finally:  # stopped early (an error, Ctrl-C): cancel what is still running or queued
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        self._shared = {}
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
