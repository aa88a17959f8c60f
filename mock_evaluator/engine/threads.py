"""How many torch threads a job trains at, on every engine: :data:`JOB_THREADS` and :func:`job_threads`."""

from __future__ import annotations

from contextlib import contextmanager

import torch

# Torch threads of each job on this machine's engines. One, whatever the cores and workers: the jobs are small
# models bound by Python overhead, where a second thread costs more than it buys (a digits epoch: 0.14 s at one
# thread, 0.18 s at two, idle) and, on a loaded machine, spins at OpenMP barriers (50-120x slower; RESULTS.md,
# "Two torch threads per job").
JOB_THREADS = 1


@contextmanager
def job_threads():
    """This process trains at :data:`JOB_THREADS` torch threads inside the block (as every job does), at its own count
    after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(JOB_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)
