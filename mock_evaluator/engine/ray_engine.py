"""Run the evaluator's jobs on a Ray cluster (``--executor ray``): one Ray task per job.

Behind the same :class:`~mock_evaluator.engine.protocol.Executor` protocol as the local process pool, so the
evaluator's phases, its cache layout and its keys do not change: the driver (the machine running
``python -m mock_evaluator``) receives every result and writes it to the cache exactly as with the
local executor, and a run can switch executors and resume.

* **Resources.** Each task reserves ``cpus_per_job`` CPUs and ``gpus_per_job`` GPUs (a fraction, e.g.
  0.25, lets four jobs share a GPU). At most as many tasks as the cluster has room for are in flight;
  results are taken as they finish with ``ray.wait``.
* **Shared objects.** The setting (data, model class, recipe) and the original model's weights go into
  the object store once per evaluation (``ray.put``); each task gets the references, and each Ray worker
  process fetches them once and keeps them (:func:`mock_evaluator.engine.jobs.provide_shared`).
* **Code.** Starting a local instance, the workers see the driver's files. Joining a cluster
  (``--ray-address`` or ``$RAY_ADDRESS``), the project's packages travel with the job through Ray's
  ``runtime_env`` (``py_modules``); a submission given as a *file* must then lie at the same path on every
  node (a shared file system) -- or be given as a module of the project (``submission.alif``).
* **Failures.** As with the local pool: a task past its timeout is cancelled (its worker is killed), a
  task whose worker dies becomes ``"model i: the worker running the submission died (...)"``; tasks are
  never retried (a submission that kills its worker would only do it again). Ray does not report a dead
  task's exit code, so the message says what Ray knows. As with the local pool, the time limit counts
  from when the submission is called: each task tells a small clock actor, which the driver polls (about
  once a second) while a limit is set.

Ray is optional (``pip install -r requirements-ray.txt``); nothing imports this module unless
``--executor ray`` is asked for.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from unlearning_mock.mock_evaluator.engine.protocol import WorkerFailure, failed, timeout_cause
from unlearning_mock.mock_evaluator.engine.worker import start_worker

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("mock_evaluator", "starter_kit", "submission", "methods")
RAY_MISSING = ("--executor ray needs Ray, which is not installed in this environment: install it with "
               "`make install-ray` (or `pip install -r requirements-ray.txt`), or use --executor local")


def import_ray():
    """The ``ray`` module, or a ValueError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError(RAY_MISSING) from None
    return ray


def project_runtime_env() -> dict:
    """What a remote Ray worker needs of this project: its packages, shipped as ``py_modules``."""
    modules = [str(PROJECT_ROOT / name) for name in PROJECT_PACKAGES if (PROJECT_ROOT / name / "__init__.py").exists()]
    return {"py_modules": modules, "excludes": ["__pycache__", "*.pyc"]}


_fetched: dict[str, tuple] = {}   # in a Ray worker: the shared objects of the current evaluation


class _Clock:
    """A Ray actor: when each task's timed part began (tasks report, the driver collects)."""

    def __init__(self):
        self.started: list = []

    def start(self, key: int) -> None:
        self.started.append(key)

    def collect(self) -> list:
        started, self.started = self.started, []
        return started


def _run_task(fn: Callable, job, shared: list, threads: int, clock=None, key: int = 0):
    """The body of one Ray task: make the shared objects available (fetched once per worker), run the job."""
    import ray

    from unlearning_mock.mock_evaluator.engine import jobs

    start_worker(threads, clock=(lambda: clock.start.remote(key)) if clock is not None else jobs._no_clock)
    evaluation = shared[0].hex()
    if evaluation not in _fetched:
        _fetched.clear()
        # deep copies: arrays from the object store are read-only views, and a submission may write to its data
        _fetched[evaluation] = tuple(copy.deepcopy(value) for value in ray.get(shared))
    jobs.provide_shared(job.context, *_fetched[evaluation])
    return fn(job)


class RayExecutor:
    """Jobs as Ray tasks; see the module docstring. ``address``: a cluster to join (None: ``$RAY_ADDRESS``
    if set, else start a local instance); if Ray is already initialised in this process it is used as is
    (and left running by :meth:`close`). ``init_options`` go to ``ray.init`` (e.g. ``num_cpus``)."""

    def __init__(self, address: str | None = None, gpus_per_job: float = 0.0, cpus_per_job: float = 1.0,
                 max_in_flight: int | None = None, init_options: dict | None = None):
        if gpus_per_job < 0 or cpus_per_job <= 0:
            raise ValueError(f"--gpus-per-job must be >= 0 and cpus per job > 0, got {gpus_per_job}, {cpus_per_job}")
        ray = import_ray()
        self._ray = ray
        self.startup_seconds = 0.0
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            address = address or os.environ.get("RAY_ADDRESS") or None
            options = {"include_dashboard": False, "logging_level": "warning", **(init_options or {})}
            if address is not None:
                options["runtime_env"] = project_runtime_env()
            start = time.perf_counter()
            ray.init(address=address, **options)
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
        self._clock = None
        self._keys = 0

    def _shared_refs(self, context) -> list:
        if context not in self._shared:
            from unlearning_mock.mock_evaluator.engine.jobs import shared_objects

            self._shared = {context: [self._ray.put(value) for value in shared_objects(context)]}
        return self._shared[context]

    def map_unordered(self, fn: Callable, jobs: Iterable, timeout: float | None = None) -> Iterator[tuple[object, object]]:
        ray = self._ray
        todo = list(jobs)[::-1]
        pending: dict = {}   # ref -> [job, deadline, key]
        if timeout and self._clock is None:
            self._clock = ray.remote(num_cpus=0)(_Clock).remote()
        clock = self._clock if timeout else None
        try:
            while todo or pending:
                while todo and len(pending) < self.max_in_flight:
                    job, self._keys = todo.pop(), self._keys + 1
                    ref = self._task.remote(fn, job, self._shared_refs(job.context), self._threads, clock, self._keys)
                    pending[ref] = [job, float("inf"), self._keys]  # the deadline is set when the clock starts
                if clock is not None:
                    started, now = set(ray.get(clock.collect.remote())), time.monotonic()
                    for entry in pending.values():
                        if entry[2] in started:
                            entry[1] = now + timeout
                deadline = min(entry[1] for entry in pending.values())
                wait_s = None if clock is None else min(1.0, max(0.0, deadline - time.monotonic()))
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=wait_s)
                now = time.monotonic()
                for ref in ready:
                    job = pending.pop(ref)[0]
                    yield job, self._result(ref, job)
                for ref, (job, deadline, _) in list(pending.items()):
                    if now >= deadline:
                        del pending[ref]
                        ray.cancel(ref, force=True)
                        yield job, failed(job, timeout_cause(job, timeout))
        finally:  # stopped early (an error, Ctrl-C): cancel what is still running or queued
            for ref in pending:
                ray.cancel(ref, force=True)

    def _result(self, ref, job):
        from ray.exceptions import RayTaskError, WorkerCrashedError

        try:
            return self._ray.get(ref)
        except WorkerCrashedError:
            return failed(job, f"the worker running {job.subject} died (Ray reports a crashed worker process: "
                               "an exit, a signal or running out of memory)")
        except RayTaskError as error:
            raise WorkerFailure(f"{job.describe()} failed in a Ray task:\n{error}") from None

    def close(self) -> None:
        self._shared, self._clock = {}, None
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
