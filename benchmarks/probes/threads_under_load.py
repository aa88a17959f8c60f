"""Probe (one-off): wall and CPU seconds of one digits training epoch at 1 and 2 torch threads, to show what a
2-thread job costs when the 2 cores are shared; figures in benchmarks/RESULTS.md, "Two torch threads per job on
a loaded 2-core machine".

    nice -n 5 .venv/bin/python benchmarks/probes/threads_under_load.py                        # GNU OpenMP's default wait
    OMP_WAIT_POLICY=PASSIVE nice -n 5 .venv/bin/python benchmarks/probes/threads_under_load.py
"""
import os
import time
from dataclasses import replace

import torch

from unlearning_mock.starter_kit.data import load_digits_data
from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.training import DIGITS_RECIPE, train_models

if __name__ == "__main__":
    print("load", os.getloadavg(), "OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "(unset)"))
    data = load_digits_data()
    recipe = replace(DIGITS_RECIPE, epochs=1)
    for threads in (1, 2, 1, 2):
        torch.set_num_threads(threads)
        wall, cpu = time.perf_counter(), time.process_time()
        train_models(SmallResNet, *data.retain, recipe, [1], "cpu", fuse=False)
        print(f"{threads} thread(s): wall {time.perf_counter() - wall:.2f} s, cpu {time.process_time() - cpu:.2f} s",
              flush=True)
    print("load", os.getloadavg())
