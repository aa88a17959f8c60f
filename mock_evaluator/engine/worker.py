"""A worker process's start-up, the same under every engine (a local process, a Ray worker).

Workers ignore SIGINT: Ctrl-C in a terminal reaches the whole process group, the driver alone reacts to it
and stops every busy worker on its way out, so nothing writes to the cache after the driver stops (only
the driver writes there).
"""

from __future__ import annotations

import signal
import threading
from typing import Callable


def start_worker(threads: int, clock: Callable[[], None]) -> None:
    """Ready this process for the evaluator's jobs: SIGINT ignored, ``threads`` torch threads, and ``clock``
    called when a job's timed part begins (:data:`mock_evaluator.engine.jobs.clock_starts`: the engine's
    time limit does not count the worker loading the data or the submission)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's business (it stops us)
    import torch

    from unlearning_mock.mock_evaluator.engine import jobs

    torch.set_num_threads(threads)
    jobs.clock_starts = clock
