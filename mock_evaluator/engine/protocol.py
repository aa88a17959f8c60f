"""What every engine implements, what a job gives back, and whom a failure is blamed on.

A *job* is one model or one batch of models (:mod:`~mock_evaluator.engine.jobs`); the evaluator needs only
the :class:`Executor` protocol (``map_unordered`` and ``close``), so the engines
(:mod:`~mock_evaluator.engine.local`: this machine's processes; :mod:`~mock_evaluator.engine.ray_engine`:
a Ray cluster) plug in without touching the evaluator's phases, and neither engine imports the other.

Every failure says whose it is. A :class:`JobResult` with an ``error`` carries its ``fault``:
:data:`SUBMISSION` (the method raised, exited, hung past its limit, died, ran out of memory, broke the
contract -- the other methods are still scored) or :data:`EVALUATOR` (the evaluator's own code or its
engine: a worker or a node died, an oracle job failed). The project's own code raising in a worker is an
:class:`EvaluatorFailure`, never a submission's error.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol

import numpy as np

from unlearning_mock.mock_evaluator.engine.figures import stack_figures

SUBMISSION, EVALUATOR = "submission", "evaluator"


@dataclass
class JobResult:
    figures: list = field(default_factory=list)   # one dict per model
    seconds: list = field(default_factory=list)   # per-model wall time of the timed work
    error: str | None = None
    fault: str | None = None                      # with an error: SUBMISSION or EVALUATOR

    def arrays(self, job) -> dict:
        """What the evaluator stores for this job: the stacked figures, the timings, the seeds."""
        return {**stack_figures(self.figures), "seconds": np.array(self.seconds), "seeds": np.array(job.seeds)}


class Executor(Protocol):
    """What the evaluator asks of an engine."""

    workers: int

    def map_unordered(self, jobs: Iterable) -> Iterator[tuple[object, JobResult]]:
        """Run every job; yield ``(job, result)`` pairs as they finish, in any order. A job whose worker
        dies yields ``(job, JobResult(error=..., fault=...))``; the project's code raising in a worker raises
        :class:`EvaluatorFailure`. Closing the iterator early drops the jobs that have not finished."""

    def close(self) -> None:
        """Release the workers."""


class EvaluatorFailure(RuntimeError):
    """The evaluator or its engine failed -- not a submission; the message says what and how to go on."""


def failed(job, cause: str, fault: str) -> JobResult:
    """The result of a job that did not finish: the error names the job (``model i``) and the cause."""
    return JobResult(error=f"{job.describe()}: {cause}", fault=fault)


def timeout_cause(job, limit: float) -> str:
    return f"{job.subject} ran longer than the limit of {limit:g} s (--run-timeout) and was stopped"


def death_cause(job, exitcode: int | None, who: str = "the worker running") -> str:
    """``the worker running the submission died (killed by signal SIGKILL)``; ``exitcode`` as multiprocessing
    gives it (negative: the signal), None when it is not known."""
    if exitcode is None:
        how = "without a word"
    elif exitcode < 0:
        try:
            how = f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
    else:
        how = f"exit code {exitcode}"
    return f"{who} {job.subject} died ({how})"


def worker_died(job, exitcode: int | None) -> JobResult:
    """An evaluator's worker process died while it ran ``job`` (its own child runs the submission, so this
    is not the submission's own process): the evaluator's failure."""
    return failed(job, death_cause(job, exitcode, who="the evaluator's worker process running") +
                  " (not the submission's own process: the machine may be out of memory, or something killed "
                  "it)", EVALUATOR)
