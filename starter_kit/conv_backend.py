"""Which code runs CPU convolutions -- oneDNN's (``onednn``, torch's default) or PyTorch's own (``native``) -- for each
kind of work, chosen by measuring both on this machine.

``torch.backends.mkldnn.enabled`` switches it for the whole process. Which one is faster depends on the model and
the work: on the small 8x8 models one model at batch 4 spends most of a oneDNN step in per-call overhead (the native
path is about twice as fast), while 128 models fused into one grouped network, or one model's figures at batches of
1,024, run faster with oneDNN. So the evaluator measures a few steps of each backend for each kind of work
(:data:`KINDS`):

* ``one_model``: a training step of one ordinary model at the loaders' batch, in the ordinary layout -- every
  unlearning call, the timing retrain, the original;
* ``fused``: a training step of the setting's oracle chunk fused into one grouped network at the recipe's batch,
  channels-last -- the oracles and the fused baseline (their figures included);
* ``figures``: one model's logits on a batch of ``EVAL_BATCH`` images in eval mode
  (:func:`starter_kit.evaluation.logits_on`) -- the figures of every unlearned model and of the original;

and keeps the faster for each (:func:`choose`; a tie keeps torch's default). The choice is measured once per
setting, model, chunk and machine and cached (:func:`measured_backends`), so a run's cache keys stay stable.
Only CPU convolutions are affected: on another device nothing is measured and torch's default stays.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from unlearning_mock.starter_kit.evaluation import EVAL_BATCH, logits_on
from unlearning_mock.starter_kit.training import cache_hash, model_key, training_step_timer

ONEDNN, NATIVE = "onednn", "native"
BACKENDS = (ONEDNN, NATIVE)
AUTO = "auto"
CHOICES = (AUTO, *BACKENDS)
"""What ``--conv-backend`` takes: ``auto`` (measured, cached) or a backend for every kind of work."""
ENV_VAR = "UNLEARNING_CONV_BACKEND"
"""Sets ``--conv-backend``'s default (and the backend of the test process's own training, ``tests/conftest.py``)."""
KINDS = ("one_model", "fused", "figures")
ROUNDS = 3
"""Measurements of each backend per kind, interleaved (A B A B A B), so a change of load hits both; the median
counts."""
SECONDS_PER_MEASUREMENT = 0.25
"""Roughly how long one measurement runs (its step count is sized from a first warm-up step)."""
MAX_STEPS = 50


def check_backend(name: str, choices=BACKENDS) -> str:
    if name not in choices:
        raise ValueError(f"--conv-backend must be one of {', '.join(choices)}, got {name!r}")
    return name


def default_choice() -> str:
    """``--conv-backend``'s default: ``$UNLEARNING_CONV_BACKEND`` where it is set, else ``auto``."""
    choice = os.environ.get(ENV_VAR, AUTO)
    if choice not in CHOICES:
        raise ValueError(f"${ENV_VAR} must be one of {', '.join(CHOICES)}, got {choice!r}; unset it to measure")
    return choice


def current() -> str:
    """The backend this process's CPU convolutions use now."""
    return ONEDNN if torch.backends.mkldnn.enabled else NATIVE


def apply(backend: str) -> None:
    """Use ``backend`` for this process's CPU convolutions from now on."""
    torch.backends.mkldnn.enabled = check_backend(backend) == ONEDNN


@contextmanager
def using(backend: str):
    """``backend`` inside the block, the previous one after it."""
    before = current()
    apply(backend)
    try:
        yield
    finally:
        apply(before)


@dataclass(frozen=True)
class ConvBackends:
    """The backend of each kind of work (:data:`KINDS`) in one evaluation."""

    one_model: str = ONEDNN
    fused: str = ONEDNN
    figures: str = ONEDNN

    def __post_init__(self):
        for kind in KINDS:
            check_backend(getattr(self, kind))

    @classmethod
    def every(cls, backend: str) -> "ConvBackends":
        return cls(backend, backend, backend)


def choose(measure: Callable[[str, str], float], rounds: int = ROUNDS) -> tuple[ConvBackends, dict]:
    """The faster backend per kind: ``measure(kind, backend)`` gives seconds per step; each backend is measured
    ``rounds`` times, interleaved with the other, and its median counts (a tie keeps torch's default, oneDNN).
    Returns the choice and ``{kind: {backend: median seconds per step}}``."""
    if rounds < 1:
        raise ValueError(f"choose needs rounds >= 1, got {rounds}")
    medians, picked = {}, {}
    for kind in KINDS:
        times = {backend: [] for backend in BACKENDS}
        for _ in range(rounds):
            for backend in BACKENDS:
                times[backend].append(float(measure(kind, backend)))
        medians[kind] = {backend: statistics.median(values) for backend, values in times.items()}
        picked[kind] = min(BACKENDS, key=lambda b: (medians[kind][b], b != ONEDNN))
    return ConvBackends(**picked), medians


def setting_measure(setting, groups: int, device: str | torch.device = "cpu",
                    seconds: float = SECONDS_PER_MEASUREMENT) -> Callable[[str, str], float]:
    """``measure(kind, backend)`` for :func:`choose`: seconds per step of the setting's model on real retain images
    -- a training step of one model at the loaders' batch (``one_model``) or of ``groups`` fused at the recipe's
    (``fused``), one model's logits on one evaluation batch (``figures``). The first call of each (kind,
    backend) warms it up and sizes its step count to about ``seconds``."""
    inputs, targets = setting.data.retain
    timers = {"one_model": training_step_timer(setting.make_model, inputs, targets, setting.recipe, 1,
                                               setting.batch_size, device, channels_last=False),
              "fused": training_step_timer(setting.make_model, inputs, targets, setting.recipe, groups,
                                           setting.recipe.batch_size, device),
              "figures": _figures_timer(setting.make_model, inputs[:EVAL_BATCH], device)}
    steps: dict[tuple[str, str], int] = {}

    def measure(kind: str, backend: str) -> float:
        with using(backend):
            if (kind, backend) not in steps:   # a first step (allocations, kernel choice) sizes the measurements
                steps[kind, backend] = max(1, min(MAX_STEPS, int(seconds / max(timers[kind](1), 1e-6))))
            return timers[kind](steps[kind, backend])
    return measure


def _figures_timer(make_model, inputs: torch.Tensor, device) -> Callable[[int], float]:
    """``seconds_per_pass(passes)``: one model's eval-mode logits on ``inputs``, as the figures compute them."""
    torch.manual_seed(0)
    model = make_model().to(device).eval()

    def seconds_per_pass(passes: int) -> float:
        start = time.perf_counter()
        for _ in range(passes):
            logits_on(model, inputs)
        return (time.perf_counter() - start) / passes
    return seconds_per_pass


def processor_name() -> str:
    """This machine's CPU model (``/proc/cpuinfo``'s model name on Linux), part of the cached choice's key."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measured_backends(setting, groups: int, device: str, cache_dir, threads: int = 1,
                      log=print) -> tuple[ConvBackends, dict]:
    """The faster backend per kind for ``setting`` on this machine (:func:`choose` over :func:`setting_measure`, at
    ``threads`` torch threads as the jobs run), measured once and cached in ``cache_dir/conv-backend/``; returns the
    choice and its record (the medians, the CPU, where it is cached). Off the CPU: torch's default, not measured."""
    if torch.device(device).type != "cpu":
        return ConvBackends(), {"backends": asdict(ConvBackends()),
                                "chosen_by": f"torch's default (not measured: the switch only affects CPU "
                                             f"convolutions, this run trains on {device})"}
    key = cache_hash("conv-backend", setting.name, model_key(setting.make_model()), setting.batch_size,
                     setting.recipe.batch_size, setting.recipe.optimizer, list(setting.data.input_shape), groups,
                     threads, device, processor_name(), torch.__version__.split("+")[0])
    path = Path(cache_dir) / "conv-backend" / f"{setting.name}-{key}.json"
    try:
        record = json.loads(path.read_text())
        return ConvBackends(**record["backends"]), record
    except (OSError, ValueError, KeyError, TypeError):
        pass
    log(f"measuring both convolution backends for {setting.name} on this CPU (once; cached) ...")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        backends, medians = choose(setting_measure(setting, groups, device))
    finally:
        torch.set_num_threads(before)
    record = {"backends": asdict(backends), "chosen_by": "measured on this machine (cached)",
              "ms_per_step": {kind: {b: round(1e3 * s, 4) for b, s in row.items()} for kind, row in medians.items()},
              "fused_models": groups, "threads": threads, "processor": processor_name(),
              "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), "cached_at": str(path)}
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(record, indent=2))
    temp.replace(path)
    return backends, record


def resolve_backends(option: str, setting, groups: int, device: str, cache_dir, threads: int = 1,
                     log=print) -> tuple[ConvBackends, dict]:
    """``--conv-backend``: ``auto`` is :func:`measured_backends`; a backend's name forces it for every kind."""
    check_backend(option, CHOICES)
    if option == AUTO:
        return measured_backends(setting, groups, device, cache_dir, threads, log)
    backends = ConvBackends.every(option)
    return backends, {"backends": asdict(backends), "chosen_by": f"--conv-backend {option}"}
