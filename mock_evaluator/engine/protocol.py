"""What every engine implements, and how an engine reports a job that did not finish.

A *job* is one model or one batch of models; :func:`mock_evaluator.engine.jobs.run_job` turns it into its
figures. The evaluator needs only the :class:`Executor` protocol (``map_unordered`` and ``close``), so the
engines (:mod:`~mock_evaluator.engine.local`: this machine's processes; :mod:`~mock_evaluator.engine.ray_engine`:
a Ray cluster) plug in without touching the evaluator's phases, and neither engine imports the other.

Bad submissions must not take the evaluator down with them: an engine turns the ways a job can go wrong
*outside* Python's exception handling (a job past its time limit, a worker that dies) into an ordinary
failed result, ``(job, JobResult(error="model i: ..."))``, built by :func:`failed` from the causes below;
the project's own code raising in a worker is a :class:`WorkerFailure`.
"""

from __future__ import annotations

import signal
from typing import Callable, Iterable, Iterator, Protocol

from unlearning_mock.mock_evaluator.engine.jobs import JobResult


class Executor(Protocol):
    """What the evaluator asks of an engine."""

    workers: int

    def map_unordered(self, fn: Callable, jobs: Iterable, timeout: float | None = None) -> Iterator[tuple[object, object]]:
        """Run ``fn(job)`` for every job; yield ``(job, result)`` pairs as they finish, in any order. A job
        running longer than ``timeout`` seconds, or whose worker dies, yields ``(job, JobResult(error=...))``.
        Closing the iterator early drops the jobs that have not finished."""

    def close(self) -> None:
        """Release the workers."""


class WorkerFailure(RuntimeError):
    """The project's own code (not a submission) raised in a worker; the message holds its traceback."""


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
