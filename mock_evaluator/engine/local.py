"""This machine's engine: the evaluator's jobs in spawned worker processes (or, for debugging, in this one).

Implements :class:`~mock_evaluator.engine.protocol.Executor`. Bad submissions must not take the evaluator
down with them, so every executor here but the in-process one (a debugging choice) turns the ways a job can
go wrong *outside* Python's exception handling into an ordinary failed result (see
:mod:`~mock_evaluator.engine.protocol`):

* a job past its ``timeout`` is stopped (its worker process is killed and replaced);
* a worker process that dies (``os._exit``, a segfault in native code, the OOM killer) is reported
  with its exit code or signal, and replaced.

``SystemExit`` / ``KeyboardInterrupt`` raised *inside* a submission are caught where the submission is
called (:func:`mock_evaluator.engine.jobs.run_job`). Workers start as every engine's do
(:func:`mock_evaluator.engine.worker.start_worker`); the driver kills every busy worker when it stops.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from multiprocessing.connection import wait as wait_for
from typing import Callable, Iterable, Iterator

from unlearning_mock.mock_evaluator.engine.protocol import WorkerFailure, death_cause, failed, timeout_cause
from unlearning_mock.mock_evaluator.engine.worker import start_worker


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


def _worker_main(conn, threads: int) -> None:
    """A worker process: receive ``(fn, job)``, send ``("started", None)`` when the job's timed part begins
    (:data:`mock_evaluator.engine.jobs.clock_starts`: the limit does not count this process loading the data or
    the submission), then ``("ok", result)`` or ``("raised", traceback)``."""
    start_worker(threads, clock=lambda: conn.send(("started", None)))
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
