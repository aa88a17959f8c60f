"""A small executor interface: run independent jobs, hand back each result as it finishes.

A *job* is one model or one batch of models; :func:`mock_evaluator.engine.jobs.run_job` turns it into its
figures. The evaluator needs only the :class:`Executor` protocol (``map_unordered`` and ``close``), so
another engine (:mod:`mock_evaluator.engine.ray_engine`) plugs in without touching the evaluator's phases.

Bad submissions must not take the evaluator down with them. Every executor but the in-process one
(a debugging choice) therefore turns the ways a job can go wrong *outside* Python's exception handling
into an ordinary failed result, ``(job, JobResult(error="model i: ..."))``:

* a job past its ``timeout`` is stopped (its worker process is killed and replaced);
* a worker process that dies (``os._exit``, a segfault in native code, the OOM killer) is reported
  with its exit code or signal, and replaced.

``SystemExit`` / ``KeyboardInterrupt`` raised *inside* a submission are caught where the submission is
called (:func:`mock_evaluator.engine.jobs.run_job`). Workers ignore SIGINT: Ctrl-C in a terminal reaches the
whole process group, the driver alone reacts to it and kills every busy worker on its way out, so
nothing writes to the cache after the driver stops (only the driver writes there).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import traceback
from multiprocessing.connection import wait as wait_for
from typing import Callable, Iterable, Iterator, Protocol

from unlearning_mock.mock_evaluator.engine.jobs import JobResult

EXECUTORS = ("local", "inline", "ray")


class Executor(Protocol):
    """What the evaluator asks of an engine."""

    workers: int

    def map_unordered(self, fn: Callable, jobs: Iterable, timeout: float | None = None) -> Iterator[tuple[object, object]]:
        """Run ``fn(job)`` for every job; yield ``(job, result)`` pairs as they finish, in any order. A job
        running longer than ``timeout`` seconds, or whose worker dies, yields ``(job, JobResult(error=...))``.
        Closing the iterator early drops the jobs that have not finished."""

    def close(self) -> None:
        """Release the workers."""


def failed(job, cause: str) -> JobResult:
    """The result of a job that did not finish: the error names the job (``model i``) and the cause."""
    return JobResult(error=f"{job.describe()}: {cause}")


def timeout_cause(job, limit: float) -> str:
    return f"{job.subject} ran longer than the limit of {limit:g} s (--run-timeout) and was stopped"


def death_cause(job, exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
    else:
        how = f"exit code {exitcode}"
    return f"the worker running {job.subject} died ({how})"


class InlineExecutor:
    """Runs jobs one after another in this process: no isolation and no timeout (a submission that calls
    ``os._exit`` ends the evaluator, a hang hangs it), but breakpoints and ``pdb`` work. For debugging and
    fast tests (``--executor inline``)."""

    workers = 1

    def map_unordered(self, fn: Callable, jobs: Iterable, timeout: float | None = None) -> Iterator[tuple[object, object]]:
        for job in jobs:
            yield job, fn(job)

    def close(self) -> None:
        pass


class WorkerFailure(RuntimeError):
    """The project's own code (not a submission) raised in a worker; the message holds its traceback."""


def _worker_main(conn, threads: int) -> None:
    """A worker process: receive ``(fn, job)``, send ``("started", None)`` when the job's timed part begins
    (:data:`mock_evaluator.engine.jobs.clock_starts`: the limit does not count this process loading the data or
    the submission), then ``("ok", result)`` or ``("raised", traceback)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's business (it kills us)
    import torch

    from unlearning_mock.mock_evaluator.engine import jobs

    torch.set_num_threads(threads)
    jobs.clock_starts = lambda: conn.send(("started", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if message is None:
            return
        fn, job = message
        try:
            reply = ("ok", fn(job))
        except BaseException:  # noqa: BLE001 -- reported to the driver, which decides
            reply = ("raised", traceback.format_exc())
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class _Worker:
    """One spawned worker process and its end of the pipe."""

    def __init__(self, context, threads: int):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, threads), daemon=True)
        self.process.start()
        child.close()
        self.job = None
        self.deadline = float("inf")

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(5)
        self.kill()


class ProcessExecutor:
    """Runs jobs in ``workers`` spawned processes, each with ``threads`` torch threads, one job per worker
    at a time. A job past its timeout, or whose worker dies, becomes a failed result and the worker is
    replaced; workers still busy when the caller stops reading (an error, Ctrl-C) are killed."""

    def __init__(self, workers: int, threads: int = 1):
        if workers < 1:
            raise ValueError(f"a process executor needs at least one worker, got {workers}")
        self.workers, self.threads = workers, threads
        self._context = multiprocessing.get_context("spawn")
        self._idle: list[_Worker] = []

    def _worker(self) -> _Worker:
        return self._idle.pop() if self._idle else _Worker(self._context, self.threads)

    def map_unordered(self, fn: Callable, jobs: Iterable, timeout: float | None = None) -> Iterator[tuple[object, object]]:
        todo = list(jobs)[::-1]
        busy: list[_Worker] = []
        try:
            while todo or busy:
                while todo and len(busy) < self.workers:
                    worker, job = self._worker(), todo.pop()
                    worker.job, worker.deadline = job, float("inf")  # the clock starts when the worker says so
                    worker.conn.send((fn, job))
                    busy.append(worker)
                wait_s = max(0.0, min(w.deadline for w in busy) - time.monotonic())
                ready = set(wait_for([w.conn for w in busy] + [w.process.sentinel for w in busy],
                                     timeout=None if wait_s == float("inf") else wait_s))
                now = time.monotonic()
                for worker in list(busy):
                    job, outcome = worker.job, None
                    if worker.conn in ready or worker.process.sentinel in ready:
                        outcome = self._collect(worker, timeout)
                    if outcome is None and now >= worker.deadline:
                        outcome = ("failed", failed(job, timeout_cause(job, timeout)))
                    if outcome is None:
                        continue
                    busy.remove(worker)
                    if outcome[0] == "failed":
                        worker.kill()  # hung or dead; a fresh one takes its place when needed
                    else:
                        worker.job = None
                        self._idle.append(worker)
                    if outcome[0] == "raised":
                        raise WorkerFailure(f"{job.describe()} failed in a worker process:\n{outcome[1]}")
                    yield job, outcome[1]
        finally:  # stopped early (an error, Ctrl-C): the busy workers' results would never be read
            for worker in busy:
                worker.kill()

    @staticmethod
    def _collect(worker: _Worker, timeout: float | None) -> tuple[str, object] | None:
        """``("ok", result)``, ``("raised", traceback)``, ``("failed", JobResult)`` when the worker died, or
        None while the job runs (a "started" message sets its deadline)."""
        try:
            while worker.conn.poll():
                kind, payload = worker.conn.recv()
                if kind != "started":
                    return kind, payload
                worker.deadline = time.monotonic() + timeout if timeout else float("inf")
            if worker.process.is_alive():
                return None
        except (EOFError, OSError):
            pass
        worker.process.join(5)
        return "failed", failed(worker.job, death_cause(worker.job, worker.process.exitcode))

    def close(self) -> None:
        for worker in self._idle:
            worker.stop()
        self._idle = []


def default_workers(device: str) -> int:
    """Two processes on a CPU with at least two cores (small models are bound by Python overhead), else one."""
    if device != "cpu":
        return 1
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def make_executor(workers: int, kind: str = "local", ray_address: str | None = None,
                  gpus_per_job: float = 0.0) -> Executor:
    """``local``: ``workers`` spawned processes (one too when ``workers`` is 1: a submission that hangs or
    exits cannot take the evaluator with it); ``inline``: this process (debugging); ``ray``: a Ray cluster
    (:class:`mock_evaluator.engine.ray_engine.RayExecutor`; ``ray_address`` None means ``$RAY_ADDRESS`` or a
    local instance)."""
    if kind == "inline":
        return InlineExecutor()
    if kind == "ray":
        from unlearning_mock.mock_evaluator.engine.ray_engine import RayExecutor

        return RayExecutor(address=ray_address, gpus_per_job=gpus_per_job)
    if kind != "local":
        raise ValueError(f"--executor must be one of {EXECUTORS}, got {kind!r}")
    threads = max(1, (os.cpu_count() or workers) // workers)
    return ProcessExecutor(workers, threads)
