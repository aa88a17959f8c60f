"""The evaluator's jobs and the worker-side code that runs them.

A job carries only small, picklable facts (names, paths, seeds); the worker rebuilds the setting
and the original model once per process from the :class:`Context`, unless an engine handed them over
already (:func:`provide_shared`: the Ray executor ships them once through its object store).

A submission that raises -- ``SystemExit`` and ``KeyboardInterrupt`` included -- gives a result whose
``error`` names the model and the cause; the executors add timeouts and dead workers
(:mod:`mock_evaluator.engine.protocol`).
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field
from typing import ClassVar
from functools import lru_cache

import numpy as np
import torch

from unlearning_mock.mock_evaluator.scoring.figures import ModelFailure, figures_of_models, model_figures, stack_figures
from unlearning_mock.mock_evaluator.method import Method, call_keywords, load_function
from unlearning_mock.starter_kit.data import make_loaders
from unlearning_mock.starter_kit.settings import load_setting
from unlearning_mock.starter_kit.training import train_models

@dataclass(frozen=True)
class Context:
    """What every job of one evaluation shares."""

    dataset: str
    data_dir: str | None
    setting_options: tuple          # sorted (name, value) pairs for load_setting
    original_path: str              # the original model's state dict
    device: str


@dataclass(frozen=True)
class OracleJob:
    """Train a batch of models from scratch on the retain set (fused when the model allows it)."""

    context: Context
    seeds: tuple
    slot: int                       # which chunk of the oracle set
    subject: ClassVar[str] = "the oracle training"

    def describe(self) -> str:
        return f"oracles {self.seeds[0]}..{self.seeds[-1]}"


@dataclass(frozen=True)
class UnlearningJob:
    """Run one unlearning call of ``method`` on a fresh copy of the original model."""

    context: Context
    method: Method
    slot: int                       # the model index i (0 .. N-1)
    seeds: tuple                    # (seed,): run i of every method uses the same seed
    subject: ClassVar[str] = "the submission"

    def describe(self) -> str:
        return f"model {self.slot}"


@dataclass(frozen=True)
class RetrainTimingJob:
    """Time one ordinary (one model at a time) retrain on the retain set."""

    context: Context
    seeds: tuple
    slot: int = 0
    subject: ClassVar[str] = "the timing retrain"

    def describe(self) -> str:
        return f"the timing retrain (seed {self.seeds[0]})"


@dataclass
class JobResult:
    figures: list = field(default_factory=list)   # one dict per model
    seconds: list = field(default_factory=list)   # per-model wall time of the timed work
    error: str | None = None

    def arrays(self, job) -> dict:
        """What the evaluator stores for this job: the stacked figures, the timings, the seeds."""
        return {**stack_figures(self.figures), "seconds": np.array(self.seconds), "seeds": np.array(job.seeds)}


_provided: dict[Context, tuple] = {}   # context -> (setting, original state dict), see provide_shared


def provide_shared(context: Context, setting, original_state: dict) -> None:
    """Hand this process the setting and the original weights of ``context`` (instead of loading them
    from ``context``'s names and paths); an engine that ships them once per worker calls this."""
    _provided.clear()  # one evaluation at a time per worker: keep memory flat
    _provided[context] = (setting, original_state)


def shared_objects(context: Context) -> tuple:
    """``(setting, original state dict)`` of ``context``: what every job of it needs."""
    if context in _provided:
        return _provided[context]
    return _load_setting(context.dataset, context.data_dir, context.setting_options), _load_state(context.original_path)


@lru_cache(maxsize=2)
def _load_setting(dataset: str, data_dir: str | None, options: tuple):
    return load_setting(dataset, data_dir, **dict(options))


@lru_cache(maxsize=2)
def _load_state(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _setting(context: Context):
    return shared_objects(context)[0]


def _fresh_original(context: Context):
    setting, state = shared_objects(context)
    model = setting.make_model()
    model.load_state_dict(state)
    return setting, model.to(context.device).eval()


def _no_clock() -> None:
    pass


# called when the timed part of a job begins (for an unlearning run: right before the submission is called,
# after this process has loaded the setting and the submission); a worker process sets it to tell the driver
# when the job's time limit starts to count
clock_starts = _no_clock


def run_job(job) -> JobResult:
    if not isinstance(job, UnlearningJob):
        clock_starts()
    if isinstance(job, OracleJob):
        return _run_oracles(job)
    if isinstance(job, UnlearningJob):
        return _run_unlearning(job)
    if isinstance(job, RetrainTimingJob):
        return _time_retrain(job)
    raise TypeError(f"unknown job {job!r}")


def _run_oracles(job: OracleJob) -> JobResult:
    ctx = job.context
    setting = _setting(ctx)
    start = time.perf_counter()
    models = train_models(setting.make_model, *setting.data.retain, setting.recipe, job.seeds, ctx.device,
                          validation=setting.data.validation)
    seconds = (time.perf_counter() - start) / len(models)
    # the chunk's confidences and accuracies in fused passes (many models at once), as they were trained
    return JobResult(figures=figures_of_models(models, setting.data, ctx.device), seconds=[seconds] * len(models))


def _time_retrain(job: RetrainTimingJob) -> JobResult:
    ctx = job.context
    setting = _setting(ctx)
    start = time.perf_counter()
    train_models(setting.make_model, *setting.data.retain, setting.recipe, list(job.seeds), ctx.device,
                 fuse=False, validation=setting.data.validation)
    return JobResult(seconds=[time.perf_counter() - start])


def check_unlearned(net, returned, original_state: dict) -> None:
    """Raise :class:`ModelFailure` when an unlearning call broke the contract."""
    if returned is not None and returned is not net:
        raise ModelFailure(
            f"unlearning() returned a {type(returned).__name__} that is not the model it was given; it must "
            "change `net` in place (the Kaggle notebook saves `net` and ignores the return value)")
    state = net.state_dict()
    if list(state) != list(original_state):
        added = sorted(set(state) - set(original_state))[:5]
        removed = sorted(set(original_state) - set(state))[:5]
        raise ModelFailure(f"unlearning() changed the architecture: added {added}, removed {removed}")
    for name, value in state.items():
        if value.shape != original_state[name].shape:
            raise ModelFailure(f"unlearning() changed the shape of {name} from "
                               f"{tuple(original_state[name].shape)} to {tuple(value.shape)}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ModelFailure(f"unlearning() left NaN or inf values in {name}")


def _run_unlearning(job: UnlearningJob) -> JobResult:
    ctx = job.context
    setting, net = _fresh_original(ctx)
    original_state = {k: v.clone() for k, v in net.state_dict().items()}
    seed = job.seeds[0]
    loaders = make_loaders(setting.data, setting.batch_size, seed=seed, dict_batches=setting.dict_batches)
    method = job.method
    unlearn = setting.baseline if method.kind == "baseline" else load_function(method.kind, method.target)
    keywords = call_keywords(unlearn, method.option_dict, setting.profile)   # (outside the timed call)
    torch.manual_seed(seed)  # every source of randomness a submission may use is seeded per model
    np.random.seed(seed % 2**32)
    random.seed(seed)
    clock_starts()
    start = time.perf_counter()
    try:
        returned = unlearn(net, loaders.retain, loaders.forget, loaders.validation, **keywords)
        seconds = time.perf_counter() - start
        check_unlearned(net, returned, original_state)
        figures = model_figures(net, setting.data)
    except ModelFailure as failure:
        return JobResult(error=f"{job.describe()}: {failure}")
    except SystemExit as stop:
        return JobResult(error=f"{job.describe()}: the submission called sys.exit({stop.code!r}); it must return, "
                               "not end the process")
    except KeyboardInterrupt:
        return JobResult(error=f"{job.describe()}: the submission raised KeyboardInterrupt (an interrupt inside the "
                               "submission is treated as its failure; finished models are saved)")
    except Exception as error:  # the submission's own bug
        return JobResult(error=f"{job.describe()}: unlearning() raised {type(error).__name__}: {error}")
    if not math.isfinite(seconds):
        seconds = float("nan")
    return JobResult(figures=[figures], seconds=[seconds])
