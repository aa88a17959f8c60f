"""The evaluator's jobs and the worker-side code that runs them.

A job carries only small, picklable facts (names, paths, seeds, limits); the worker rebuilds the setting
and the original model once per process from the :class:`Context`, unless an engine handed them over
already (:func:`provide_shared`: the Ray executor ships them once through its object store).

:func:`run_job` runs a job in a pristine worker, each in a child process (:mod:`.isolation`): an unlearning
call in an untrusted child that hands back only its weights, the figures then computed by the worker from
those weights, where no submission code ever ran. :func:`run_job_here` runs the same stages in this process
(``--executor inline``: no isolation, no limits, for debugging).

Every job runs with the convolution backend the driver chose for its kind of work (each job class's ``work``,
:mod:`starter_kit.conv_backend`), set at its start (:func:`use_backend_of`), and a call's figures with the one chosen
for figures: whatever a call changed never reaches the next job, and the timing retrain runs as the calls it is the
yardstick of.

Every failure is blamed on the right party: ``JobResult.fault`` is ``"submission"`` for what the method
did (raised, exited, hung, died, ran out of memory, broke the contract) and ``"evaluator"`` for what the
evaluator's own code or its engine did; the project's code raising in a worker propagates as an exception.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch

from unlearning_mock.mock_evaluator.engine.isolation import ChildDied, StateLayout, run_trusted, run_untrusted
from unlearning_mock.mock_evaluator.engine.limits import Limits, format_bytes
from unlearning_mock.mock_evaluator.engine.protocol import (EVALUATOR, SUBMISSION, JobResult, death_cause, failed,
                                                            timeout_cause)
from unlearning_mock.mock_evaluator.method import Method, call_keywords, check_options, load_function
from unlearning_mock.mock_evaluator.engine.figures import ModelFailure, figures_of_models, model_figures
from unlearning_mock.mock_evaluator.sources import PROJECT_ROOT, import_closure
from unlearning_mock.starter_kit import conv_backend
from unlearning_mock.starter_kit.batch_format import KAGGLE, failure_hint
from unlearning_mock.starter_kit.conv_backend import ConvBackends
from unlearning_mock.starter_kit.data import make_loaders
from unlearning_mock.starter_kit.fused_baseline import fine_tune_copies_fused
from unlearning_mock.starter_kit.settings import load_setting
from unlearning_mock.starter_kit.training import cache_hash, train_models

@dataclass(frozen=True)
class Context:
    """What every job of one evaluation shares."""

    dataset: str
    data_dir: str | None
    setting_options: tuple          # sorted (name, value) pairs for load_setting
    original_path: str              # the original model's state dict
    device: str
    backends: ConvBackends = ConvBackends()   # the convolution backend of each kind of work, chosen by the driver


@dataclass(frozen=True)
class OracleJob:
    """Train a batch of models from scratch on the retain set (fused when the model allows it)."""

    context: Context
    seeds: tuple
    slot: int                       # which chunk of the oracle set
    subject: ClassVar[str] = "the oracle training"
    work: ClassVar[str] = "fused"   # the kind of work (conv_backend.KINDS): which convolution backend it runs

    def describe(self) -> str:
        return f"oracles {self.seeds[0]}..{self.seeds[-1]}"


@dataclass(frozen=True)
class FusedBaselineJob:
    """The setting's kit baseline (a retain fine-tune) on copies of the original, one per seed, trained fused: what
    its one-model calls with these seeds give (:mod:`starter_kit.fused_baseline`), untimed."""

    context: Context
    seeds: tuple
    slot: int                       # which chunk of the N runs
    subject: ClassVar[str] = "the fused kit baseline"
    work: ClassVar[str] = "fused"

    def describe(self) -> str:
        return f"the kit baseline's fused runs {self.seeds[0]}..{self.seeds[-1]}"


@dataclass(frozen=True)
class UnlearningJob:
    """Run one unlearning call of ``method`` on a fresh copy of the original model."""

    context: Context
    method: Method
    slot: int                       # the model index i (0 .. N-1)
    seeds: tuple                    # (seed,): run i of every method uses the same seed
    limits: Limits = Limits()
    subject: ClassVar[str] = "the submission"
    work: ClassVar[str] = "one_model"

    def describe(self) -> str:
        return f"model {self.slot}"


@dataclass(frozen=True)
class ProbeJob:
    """Load a method's module where it cannot touch the evaluator, and check the options it is given (before
    anything is trained: it needs no setting and no original)."""

    method: Method
    limits: Limits = Limits()
    context: None = None
    slot: int = 0
    seeds: tuple = ()
    subject: ClassVar[str] = "loading the submission"
    work: ClassVar[str | None] = None   # trains nothing

    def describe(self) -> str:
        return self.method.name


@dataclass(frozen=True)
class RetrainTimingJob:
    """Time one ordinary (one model at a time) retrain on the retain set."""

    context: Context
    seeds: tuple
    slot: int = 0
    subject: ClassVar[str] = "the timing retrain"
    work: ClassVar[str] = "one_model"   # as the calls it is the yardstick of

    def describe(self) -> str:
        return f"the timing retrain (seed {self.seeds[0]})"


# -- what the evaluator's results depend on ------------------------------------------------------------
CODE_ENTRIES = ("mock_evaluator/engine/jobs.py",)
"""The job code: with everything it imports from the project (figures, seeding, loaders, training,
models, settings, isolation) it is what :func:`code_fingerprint` hashes."""


@lru_cache(maxsize=4)
def code_fingerprint(root=PROJECT_ROOT) -> str:
    """A hash of the evaluator's code that produces the cached figures: part of every cache key, so a
    change to the figures, the seeding, the loaders or the training redoes what it changed."""
    files = import_closure([root / entry for entry in CODE_ENTRIES], root)
    return cache_hash(*[(str(path.relative_to(root)), path.read_text()) for path in files])


# -- the setting and the original, once per worker -------------------------------------------------------
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


@lru_cache(maxsize=2)
def _layout(context: Context) -> StateLayout:
    return StateLayout(shared_objects(context)[1])


@lru_cache(maxsize=2)
def _warm_for(context: Context) -> None:
    """One training step and one evaluation pass of the real model on a real batch, here in the worker (the
    evaluator's own code, on a CPU: the worker never touches CUDA). Each call's child then inherits torch's
    caches for these shapes instead of filling them again inside its timed part."""
    if context.device != "cpu":
        return
    setting, net = _fresh_original(context)
    inputs, targets = (part[:setting.batch_size] for part in setting.data.retain)
    net.train()
    torch.nn.functional.cross_entropy(net(inputs), targets).backward()
    with torch.no_grad():
        net.eval()(inputs)


def _fresh_original(context: Context):
    setting, state = shared_objects(context)
    model = setting.make_model()
    model.load_state_dict(state)
    return setting, model.to(context.device).eval()


# -- running a job -----------------------------------------------------------------------------------------
def use_backend_of(job) -> None:
    """Set this process's convolution backend to the one the driver chose for ``job``'s kind of work (before every
    job, so whatever a submission's call changed in this process never reaches the next one)."""
    if job.work is not None:
        conv_backend.apply(getattr(job.context.backends, job.work))


def run_job(job) -> JobResult:
    """Run ``job`` in this pristine worker, isolated: each job in a child process (module docstring)."""
    use_backend_of(job)   # the job's child inherits it
    if isinstance(job, UnlearningJob):
        _warm_for(job.context)
        block = _layout(job.context).block()
        outcome = run_untrusted(lambda started: _call(job, block, started), job.limits)
        if outcome.how != "done" or outcome.error is not None:
            return _untrusted_failure(job, outcome)
        return _score(job, _layout(job.context).read(block), outcome.seconds, isolated=True)
    if isinstance(job, ProbeJob):
        outcome = run_untrusted(lambda started: _probe(job, started), job.limits)
        return JobResult() if outcome.how == "done" and outcome.error is None else _untrusted_failure(job, outcome)
    try:
        return run_trusted(_TRUSTED[type(job)], job)
    except ChildDied as died:
        return failed(job, death_cause(job, died.exitcode, who="the process running"), EVALUATOR)


def run_job_here(job) -> JobResult:
    """Run ``job`` in this process: the same stages as :func:`run_job`, without isolation or limits, and a
    ``KeyboardInterrupt`` is the user's (it propagates)."""
    use_backend_of(job)
    if isinstance(job, UnlearningJob):
        block = bytearray(_layout(job.context).nbytes)
        clock = []
        error = _call(job, block, lambda: clock.append(time.perf_counter()), user_interrupts=True)
        seconds = time.perf_counter() - clock[0] if clock else math.nan
        if error is not None:
            return failed(job, error, SUBMISSION)
        return _score(job, _layout(job.context).read(block), seconds, isolated=False)
    if isinstance(job, ProbeJob):
        error = _probe(job, lambda: None, user_interrupts=True)
        return JobResult() if error is None else failed(job, error, SUBMISSION)
    return _TRUSTED[type(job)](job)


def _untrusted_failure(job, outcome) -> JobResult:
    if outcome.how == "timeout":
        return failed(job, timeout_cause(job, job.limits.seconds), SUBMISSION)
    if outcome.how == "died":
        return failed(job, death_cause(job, outcome.exitcode), SUBMISSION if outcome.started else EVALUATOR)
    if not outcome.started:  # failed before any submission code ran: the evaluator's own set-up
        return failed(job, f"the evaluator failed to prepare {job.subject}:\n{outcome.error}", EVALUATOR)
    return failed(job, outcome.error, SUBMISSION)


# -- the stages ------------------------------------------------------------------------------------------
def _call(job: UnlearningJob, block, started, user_interrupts: bool = False) -> str | None:
    """The unlearning call: a fresh copy of the original and the loaders (the evaluator's), then -- timed
    from ``started()`` -- the submission's module, the seeds, the call, and the weights into ``block``.
    Returns the submission's failure in words, or None."""
    ctx, method, seed = job.context, job.method, job.seeds[0]
    setting, net = _fresh_original(ctx)
    batches = setting.batch_format(method.batches)
    loaders = make_loaders(setting.data, setting.batch_size, seed=seed, dict_batches=batches == KAGGLE)
    started()
    stage = "loading the submission"
    try:
        unlearn = setting.baseline if method.kind == "baseline" else load_function(method)
        torch.manual_seed(seed)  # every source of randomness a submission may use is seeded per model
        np.random.seed(seed % 2**32)
        random.seed(seed)
        keywords = call_keywords(unlearn, method.option_dict, setting.profile)
        stage = "unlearning()"
        returned = unlearn(net, loaders.retain, loaders.forget, loaders.validation, **keywords)
        check_returned(net, returned)
        _layout(ctx).write(net.state_dict(), block)
    except KeyboardInterrupt:
        if user_interrupts:
            raise
        return ("the submission raised KeyboardInterrupt (an interrupt inside the submission is treated as its "
                "failure; finished models are saved)")
    except BaseException as error:  # noqa: BLE001 -- whatever the submission did, in words
        return submission_failure(error, stage, job.limits) + failure_hint(error, batches)
    return None


def _probe(job: ProbeJob, started, user_interrupts: bool = False) -> str | None:
    started()
    return method_problem(job.method, job.limits, user_interrupts)


def method_problem(method: Method, limits: Limits = Limits(), user_interrupts: bool = True) -> str | None:
    """Load ``method``'s ``unlearning`` in this process and check its options: what is wrong, in words, or
    None. (Runs the method's module: the evaluator calls it in a child process, :class:`ProbeJob`.)"""
    try:
        check_options(load_function(method), method.option_dict)
    except KeyboardInterrupt:
        if user_interrupts:
            raise
        return "loading the submission raised KeyboardInterrupt"
    except ValueError as error:  # no unlearning function, or options it does not take
        return str(error)   # the job's description names the method
    except BaseException as error:  # noqa: BLE001
        return submission_failure(error, "loading the submission", limits)
    return None


def submission_failure(error: BaseException, stage: str, limits: Limits) -> str:
    """What a submission's exception means, in words."""
    if isinstance(error, ModelFailure):
        return str(error)
    if isinstance(error, SystemExit):
        return f"the submission called sys.exit({error.code!r}); it must return, not end the process"
    text = str(error)
    if isinstance(error, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower():
        where = "GPU memory" if "CUDA" in text else "memory"
        limit = (f"; a call may use {format_bytes(limits.memory)} beyond its worker's own (--run-memory)"
                 if limits.memory is not None and where == "memory" else "")
        return f"the submission ran out of {where}{limit}: {type(error).__name__}: {text[:300]}"
    return f"{stage} raised {type(error).__name__}: {text}"


def check_returned(net, returned) -> None:
    """:class:`ModelFailure` unless ``unlearning`` returned ``net`` itself or None."""
    if returned is not None and returned is not net:
        raise ModelFailure(
            f"unlearning() returned a {type(returned).__name__} that is not the model it was given; it must "
            "change `net` in place (the Kaggle notebook saves `net` and ignores the return value)")


def check_finite(state: dict) -> None:
    for name, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ModelFailure(f"unlearning() left NaN or inf values in {name}")


def _score(job: UnlearningJob, weights: dict, seconds: float, isolated: bool) -> JobResult:
    """The figures of the weights a call returned, computed by the evaluator: here on a CPU (this worker
    keeps one thread), in a trusted child on a GPU (this worker never touches CUDA). A NaN/inf weight or
    logit is the submission's failure; anything else raised here is the evaluator's and propagates."""
    try:
        check_finite(weights)
        if isolated and job.context.device != "cpu":
            figures = run_trusted(weights_figures, job.context, weights)
        else:
            figures = weights_figures(job.context, weights)
    except ModelFailure as failure:
        return failed(job, str(failure), SUBMISSION)
    return JobResult(figures=[figures], seconds=[seconds if math.isfinite(seconds) else math.nan])


def weights_figures(context: Context, weights: dict) -> dict:
    """:func:`~mock_evaluator.engine.figures.model_figures` of a fresh model holding ``weights``."""
    setting = _setting(context)
    model = setting.make_model()
    model.load_state_dict(weights)
    with conv_backend.using(context.backends.figures):
        return model_figures(model.to(context.device).eval(), setting.data)


def _run_oracles(job: OracleJob) -> JobResult:
    ctx = job.context
    setting = _setting(ctx)
    start = time.perf_counter()
    models = train_models(setting.make_model, *setting.data.retain, setting.recipe, job.seeds, ctx.device,
                          validation=setting.data.validation)
    seconds = (time.perf_counter() - start) / len(models)
    # the chunk's confidences and accuracies in fused passes (many models at once), as they were trained
    return JobResult(figures=figures_of_models(models, setting.data, ctx.device), seconds=[seconds] * len(models))


def _run_fused_baseline(job: FusedBaselineJob) -> JobResult:
    ctx = job.context
    setting = _setting(ctx)
    models = [_fresh_original(ctx)[1] for _ in job.seeds]
    fine_tune_copies_fused(setting.baseline, models, setting.data, setting.batch_size, job.seeds, setting.profile,
                           ctx.device)
    return JobResult(figures=figures_of_models(models, setting.data, ctx.device), seconds=[math.nan] * len(models))


def _time_retrain(job: RetrainTimingJob) -> JobResult:
    ctx = job.context
    setting = _setting(ctx)
    start = time.perf_counter()
    train_models(setting.make_model, *setting.data.retain, setting.recipe, list(job.seeds), ctx.device,
                 fuse=False, validation=setting.data.validation)
    return JobResult(seconds=[time.perf_counter() - start])


_TRUSTED = {OracleJob: _run_oracles, FusedBaselineJob: _run_fused_baseline, RetrainTimingJob: _time_retrain}
