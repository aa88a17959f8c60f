"""This machine's engine: the evaluator's jobs in spawned worker processes (or, for debugging, in this one).

Implements :class:`~mock_evaluator.engine.protocol.Executor`. Each worker is a pristine process that runs
every job in a child of its own (:mod:`~mock_evaluator.engine.isolation`): a submission's call ends with
its child, its time and memory limits are enforced there, and a call that hangs, exits or dies becomes an
ordinary failed result naming the model, while the worker lives on. Workers are not daemonic, so a
submission may start processes of its own (``DataLoader(num_workers=2)``); the worker stops them with
its call. A worker that dies itself (out of memory, killed) is the evaluator's failure, reported with
its exit code or signal, and replaced.

Workers start as every engine's do (:func:`mock_evaluator.engine.worker.start_worker`); when the driver
stops early (an error, Ctrl-C) it terminates every busy worker, which stops its child first.
"""

from __future__ import annotations

import multiprocessing
import traceback
import weakref
from multiprocessing.connection import wait as wait_for
from typing import Iterable, Iterator

from unlearning_mock.mock_evaluator.engine.jobs import run_job, run_job_here
from unlearning_mock.mock_evaluator.engine.protocol import EvaluatorFailure, JobResult, worker_died
from unlearning_mock.mock_evaluator.engine.threads import JOB_THREADS, job_threads
from unlearning_mock.mock_evaluator.engine.worker import start_worker
from unlearning_mock.starter_kit import conv_backend

STOP_GRACE_S = 3.0   # a terminated worker has this long to stop its child before it is killed


class InlineExecutor:
    """Runs jobs one after another in this process: no isolation and no limits (a submission's changes to
    the process stay, a hang hangs the evaluator, Ctrl-C stops the evaluation), but breakpoints and ``pdb``
    work. For debugging and fast tests (``--executor inline``)."""

    workers = 1

    def map_unordered(self, jobs: Iterable) -> Iterator[tuple[object, JobResult]]:
        for job in jobs:
            # as every engine's jobs run; after the job this process's own threads and convolution backend again,
            # whatever the job (or a submission in it) changed
            with job_threads(), conv_backend.using(conv_backend.current()):
                try:
                    result = run_job_here(job)
                except (KeyboardInterrupt, EvaluatorFailure):
                    raise
                except Exception as error:  # the submission's own exceptions are results: this is the evaluator's
                    raise EvaluatorFailure(f"{job.describe()}: the evaluator's own code failed (not the submission's "
                                           f"fault): {type(error).__name__}: {error}") from error
            yield job, result

    def close(self) -> None:
        pass


def _worker_main(conn, threads: int) -> None:
    """A worker process: receive a job, send ``("ok", result)`` or ``("raised", traceback)``."""
    start_worker(threads, own_process=True)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if job is None:
            return
        try:
            reply = ("ok", run_job(job))
        except BaseException:  # noqa: BLE001 -- the evaluator's own code raised: the driver says so
            reply = ("raised", traceback.format_exc())
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class _Worker:
    """One spawned worker process and its end of the pipe."""

    def __init__(self, context, threads: int):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, threads), daemon=False)
        self.process.start()
        child.close()
        self.job = None

    def terminate(self) -> None:
        """Stop it now: SIGTERM (it stops its running child), SIGKILL if it does not go."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(STOP_GRACE_S)
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
        self.terminate()


def _stop_all(workers: list) -> None:
    for worker in workers:
        worker.stop()
    workers.clear()


class ProcessExecutor:
    """Runs jobs in ``workers`` spawned processes whose job children get ``threads`` torch threads, one job
    per worker at a time. A worker that dies becomes a failed result (the evaluator's) and is replaced;
    workers still busy when the caller stops reading (an error, Ctrl-C) are terminated."""

    def __init__(self, workers: int, threads: int = JOB_THREADS):
        if workers < 1:
            raise ValueError(f"a process executor needs at least one worker, got {workers}")
        self.workers, self.threads = workers, threads
        self._context = multiprocessing.get_context("spawn")
        self._idle: list[_Worker] = []
        # not daemonic: stop the idle ones when this executor goes, at the latest when the interpreter exits
        self._finalizer = weakref.finalize(self, _stop_all, self._idle)

    def _worker(self) -> _Worker:
        return self._idle.pop() if self._idle else _Worker(self._context, self.threads)

    def map_unordered(self, jobs: Iterable) -> Iterator[tuple[object, JobResult]]:
        todo = list(jobs)[::-1]
        busy: list[_Worker] = []
        try:
            while todo or busy:
                while todo and len(busy) < self.workers:
                    worker, job = self._worker(), todo.pop()
                    worker.job = job
                    worker.conn.send(job)
                    busy.append(worker)
                ready = set(wait_for([w.conn for w in busy] + [w.process.sentinel for w in busy]))
                for worker in list(busy):
                    if worker.conn not in ready and worker.process.sentinel not in ready:
                        continue
                    busy.remove(worker)
                    job, kind, payload = worker.job, *self._collect(worker)
                    if kind == "died":
                        worker.terminate()  # a fresh one takes its place when needed
                        yield job, worker_died(job, payload)
                        continue
                    worker.job = None
                    self._idle.append(worker)
                    if kind == "raised":
                        raise EvaluatorFailure(f"{job.describe()}: the evaluator's own code failed in a worker process "
                                               f"(not the submission's fault):\n{payload}")
                    yield job, payload
        finally:  # stopped early (an error, Ctrl-C): the busy workers' results would never be read
            for worker in busy:
                worker.terminate()

    @staticmethod
    def _collect(worker: _Worker) -> tuple[str, object]:
        """``("ok", result)``, ``("raised", traceback)`` or ``("died", exit code)``."""
        try:
            if worker.conn.poll():
                return worker.conn.recv()
        except (EOFError, OSError):
            pass
        worker.process.join(5)
        return "died", worker.process.exitcode

    def close(self) -> None:
        _stop_all(self._idle)
