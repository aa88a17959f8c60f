"""A worker process's start-up, the same under every engine (a local worker process, a Ray worker).

A worker is pristine (:mod:`.isolation`): it runs each job in a child process and never runs a
submission's code itself. It ignores SIGINT: Ctrl-C in a terminal reaches the whole process group, the
driver alone reacts to it and stops every busy worker on its way out, so nothing writes to the cache after
the driver stops (only the driver writes there).
"""

from __future__ import annotations

import signal
import threading

_started = False
_warm = False


def start_worker(threads: int, own_process: bool) -> None:
    """Ready this process for the evaluator's jobs, whose children get ``threads`` torch threads (the worker
    keeps one). ``own_process``: a worker process of our own, which on SIGTERM stops its running child
    first (a Ray worker's signals are Ray's). Repeated calls only update ``threads``."""
    global _started
    from unlearning_mock.mock_evaluator.engine import isolation

    if not _started:
        _started = True
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's business (it stops us)
    isolation.prepare_worker(threads, terminate_children=own_process)
    if not _warm:
        _warm_up()


def _warm_up() -> None:
    """Do once here, single-threaded, what every job's child would otherwise pay for again: import the kit
    every method builds on, and torch's lazily loaded training machinery (the first optimiser imports
    ``torch._dynamo``: about 3 s; the first backward pass initialises autograd)."""
    global _warm
    import torch
    from torch import nn

    import unlearning_mock.starter_kit.baseline  # noqa: F401
    import unlearning_mock.starter_kit.unlearning_steps  # noqa: F401

    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    inputs, targets = torch.zeros(2, 1, 2, 2), torch.tensor([0, 1])
    for optimizer in (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), torch.optim.Adam(model.parameters())):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    _warm = True
