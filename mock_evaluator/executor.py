"""A small executor interface: run independent jobs, hand back each result as it finishes.

A *job* is one model or one batch of models; :func:`mock_evaluator.jobs.run_job` turns it into its
figures. The evaluator needs only the :class:`Executor` protocol (``map_unordered`` and ``close``), so
another engine plugs in without touching the evaluator's phases.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Iterable, Iterator, Protocol


class Executor(Protocol):
    """What the evaluator asks of an engine."""

    workers: int

    def map_unordered(self, fn: Callable, jobs: Iterable) -> Iterator[tuple[object, object]]:
        """Run ``fn(job)`` for every job; yield ``(job, result)`` pairs as they finish, in any order.
        Closing the iterator early drops the jobs that have not started."""

    def close(self) -> None:
        """Release the workers."""


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class InlineExecutor:
    """Runs jobs one after another in this process (used on a GPU, and with one worker)."""

    workers = 1

    def map_unordered(self, fn: Callable, jobs: Iterable) -> Iterator[tuple[object, object]]:
        for job in jobs:
            yield job, fn(job)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """Runs jobs in ``workers`` spawned processes, each with ``threads`` torch threads."""

    def __init__(self, workers: int, threads: int = 1):
        self.workers = workers
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker, initargs=(threads,))

    def map_unordered(self, fn: Callable, jobs: Iterable) -> Iterator[tuple[object, object]]:
        jobs = list(jobs)
        pending = {self.pool.submit(fn, job): job for job in jobs}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    yield job, future.result()
        finally:  # stopped early (an error, Ctrl-C): drop what has not started
            for future in pending:
                future.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def default_workers(device: str) -> int:
    """Two processes on a CPU with at least two cores (small models are bound by Python overhead), else one."""
    if device != "cpu":
        return 1
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def make_executor(workers: int) -> InlineExecutor | ProcessExecutor:
    if workers <= 1:
        return InlineExecutor()
    threads = max(1, (os.cpu_count() or workers) // workers)
    return ProcessExecutor(workers, threads)
