"""The engines by name (``--executor``): the one list the command line, the configuration and
:func:`make_executor` read."""

from __future__ import annotations

import os

from unlearning_mock.mock_evaluator.engine.protocol import Executor
from unlearning_mock.mock_evaluator.engine.threads import JOB_THREADS

EXECUTORS = {
    "local": "spawned worker processes (a submission that hangs, exits or crashes cannot take the evaluator with it)",
    "inline": "in this process, no isolation or timeout (debugging)",
    "ray": "a Ray cluster (pip install -r requirements-ray.txt)",
}


def executors_help() -> str:
    """``name: what`` for every engine, for ``--help``."""
    return "; ".join(f"{name}: {what}" for name, what in EXECUTORS.items())


def check_executor(kind: str) -> None:
    if kind not in EXECUTORS:
        raise ValueError(f"--executor must be one of {', '.join(EXECUTORS)}, got {kind!r}")


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
    check_executor(kind)
    if kind == "ray":  # Ray is optional: imported only when asked for
        from unlearning_mock.mock_evaluator.engine.ray_engine import RayExecutor

        return RayExecutor(address=ray_address, gpus_per_job=gpus_per_job)
    from unlearning_mock.mock_evaluator.engine.local import InlineExecutor, ProcessExecutor

    if kind == "inline":
        return InlineExecutor()
    return ProcessExecutor(workers, JOB_THREADS)
