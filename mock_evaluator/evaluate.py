"""The mock evaluator: N unlearned copies against N retrained oracles, scored like the challenge.

:class:`Evaluation` prepares once (the setting, the original model, the context every job shares) and
then offers its phases, each with a progress bar and each persisting its finished work so an
interruption loses nothing: oracle set A (the reference every method is scored against); oracle set B
(exact retraining scored as if it were a submission: the best a method can hope for at this N); the time
of one ordinary retrain (the efficiency rule's yardstick); and N unlearning runs per method. Any number
of methods (:class:`~mock_evaluator.method.Method`) are scored against the same oracles in one run; run
*i* of every method uses the same seed (common random numbers), so differences between methods are not
seed noise. :meth:`Evaluation.run` does all of it and returns an :class:`EvaluationOutcome`: the scores, the
figures they were computed from, the timings and the record of the run (:meth:`EvaluationOutcome.results`: the
same as a dict, as ``results.json`` holds it).
"""

from __future__ import annotations

import itertools
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from unlearning_mock.mock_evaluator.engine import jobs as J
from unlearning_mock.mock_evaluator.engine.executors import check_executor, default_workers, make_executor
from unlearning_mock.mock_evaluator.engine.limits import Limits, default_memory
from unlearning_mock.mock_evaluator.engine.protocol import SUBMISSION, EvaluatorFailure, Executor
from unlearning_mock.mock_evaluator.engine.figures import SCALARS, ModelFailure, model_figures, stack_figures
from unlearning_mock.mock_evaluator.scoring.attacks import attack_rows, attack_scalars
from unlearning_mock.mock_evaluator.method import Method, method_from_spec, zip_method
from unlearning_mock.mock_evaluator.scoring.score import MethodScore, score_method
from unlearning_mock.mock_evaluator.engine.store import load_arrays, save_arrays
from unlearning_mock.mock_evaluator.engine.threads import JOB_THREADS, job_threads
from unlearning_mock.starter_kit import conv_backend
from unlearning_mock.starter_kit.attack import forget_vs_test_attack
from unlearning_mock.starter_kit.batch_format import check_format
from unlearning_mock.starter_kit.fused_baseline import can_fuse_baseline
from unlearning_mock.starter_kit.original import default_cache_dir, setting_original
from unlearning_mock.starter_kit.settings import DEFAULT_DATASET, load_setting
from unlearning_mock.starter_kit.training import cache_hash, model_key

MAX_MODELS = 10_000
ROLE_OFFSETS = {"oracle-A": 1, "oracle-B": 2, "unlearning": 3, "timing": 5}
ORACLE_CHUNK = "auto"   # or a number of oracles trained at once; see starter_kit.training.auto_oracle_chunk
# the installed SRFL module: the default from any folder (a user's own submission/ folder is not consulted)
DEFAULT_SUBMISSION = "unlearning_mock.submission.unlearning"
# the default limit on one unlearning run: generous (10x the budgeted time of a run) but finite
RUN_TIMEOUT_FACTOR = 10
RUN_TIMEOUT_FLOOR = 60.0
TIMED_BASELINE_CALLS = 8
"""One-model calls of a fused kit baseline that are timed for its time fraction (its N runs train fused, untimed)."""

SMALL_N_CHUNKS = 2
"""A small N's fused jobs are cut into at least this many chunks (the CPU's default workers), whatever --workers."""


ORACLE_REFERENCE = "oracle reference"
"""The name exact retraining (oracle set B) is scored under, as if it were a method."""


class SubmissionError(RuntimeError):
    """A method broke the contract for some model; the message names it. Finished work is on disk.
    (The evaluator's own failures are :class:`~mock_evaluator.engine.protocol.EvaluatorFailure`.)"""


@dataclass
class EvalConfig:
    dataset: str = DEFAULT_DATASET
    data_dir: str | None = None
    setting_options: dict = field(default_factory=dict)
    # the methods asked for: (spec, options) or (spec, options, batch format) -- a .py or .ipynb path, a project
    # module, or "baseline"
    submissions: tuple = ((DEFAULT_SUBMISSION, {}),)
    batches: str | None = None            # the batch format of a submission that names none ("kaggle" or "tuples")
    num_models: int = 512
    seed: int = 0
    device: str = "auto"
    output_dir: str = "outputs"
    run_name: str | None = None
    cache_dir: str | None = None          # None: $UNLEARNING_CACHE_DIR, else the user's cache folder (XDG)
    time_budget: float = 0.2
    warn_only: bool = False
    workers: int | None = None
    attack_models: int = 32
    baseline: bool = True
    oracle_chunk: int | str = ORACLE_CHUNK
    progress: bool = True
    run_timeout: float | None = None      # seconds per unlearning run; None: see Evaluation.run_timeout
    run_memory: int | None = None         # bytes one unlearning call may allocate; None: a quarter of the machine's
    executor: str = "local"               # a name of engine.executors.EXECUTORS
    ray_address: str | None = None        # None: $RAY_ADDRESS, else a local Ray instance
    gpus_per_job: float = 0.0             # Ray: GPUs per job (fractions share a GPU)
    # CPU convolutions: "auto" (measured per kind of work), "onednn", "native"; default $UNLEARNING_CONV_BACKEND or auto
    conv_backend: str = field(default_factory=conv_backend.default_choice)

    def __post_init__(self):
        if self.cache_dir is None:
            self.cache_dir = str(default_cache_dir())
        if not 2 <= self.num_models <= MAX_MODELS:
            raise ValueError(f"--num-models must lie in [2, {MAX_MODELS}], got {self.num_models}")
        if self.time_budget <= 0:
            raise ValueError(f"--time-budget must be positive, got {self.time_budget}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if self.oracle_chunk != "auto" and (not isinstance(self.oracle_chunk, int) or self.oracle_chunk < 1):
            raise ValueError(f"--oracle-chunk must be 'auto' or an integer >= 1, got {self.oracle_chunk!r}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.run_timeout is not None and not self.run_timeout > 0:
            raise ValueError(f"--run-timeout must be a positive number of seconds, got {self.run_timeout}")
        if self.run_memory is not None and not self.run_memory > 0:
            raise ValueError(f"--run-memory must be a positive number of bytes, got {self.run_memory}")
        check_executor(self.executor)
        check_format(self.batches)
        conv_backend.check_backend(self.conv_backend, conv_backend.CHOICES)
        if self.gpus_per_job < 0:
            raise ValueError(f"--gpus-per-job must be >= 0, got {self.gpus_per_job}")


@dataclass
class EvaluationOutcome:
    """What :meth:`Evaluation.run` produced. Figures are stacked per model (a leading axis of N), as
    :func:`~mock_evaluator.engine.figures.stack_figures` gives them."""

    config: EvalConfig
    device: str                            # the device the models ran on ("auto" resolved)
    methods: dict[str, MethodScore]        # every method that finished its N runs, scored against oracle set A
    oracle_reference: MethodScore          # exact retraining (oracle set B) scored like a method
    failures: dict[str, str]               # method name -> what it did wrong (not scored)
    run_figures: dict[str, dict]           # method name -> the figures of its N runs
    oracle_a: dict                         # the figures of oracle set A, the reference every method is scored against
    oracle_b: dict                         # the figures of oracle set B
    original_figures: dict                 # the untouched original's figures (one model)
    original_attacks: dict                 # attack name -> the original as N identical copies, attacked like a method
    original: dict                         # the original's accuracies, kit attack accuracy and attack columns
    retrain_seconds: float                 # one ordinary retrain, the time budget's yardstick
    timings: dict[str, float]              # seconds per phase
    conv_backend: dict                     # the convolution backends chosen, and how
    methods_asked: list[dict]              # every method asked for: name, kind, target, options, fingerprint, batches
    setting: dict                          # the setting: data, recipe, model, baseline, original's path
    versions: dict                         # python, torch, numpy, platform

    @property
    def scores(self) -> dict[str, MethodScore]:
        """Every scored row: the methods, then the oracle reference."""
        return {**self.methods, ORACLE_REFERENCE: self.oracle_reference}

    @property
    def oracle_confidences(self) -> np.ndarray:
        """The reference oracles' forget-set confidences [N, M]."""
        return self.oracle_a["forget_conf"]

    def results(self) -> dict:
        """The outcome as ``results.json`` holds it (the scores as :class:`MethodScore` objects)."""
        cfg = self.config
        return {
            "config": {**asdict(cfg), "device_resolved": self.device},
            "conv_backend": self.conv_backend,
            "methods_asked": self.methods_asked,
            "setting": self.setting,
            "original": self.original,
            **{f"original_{name}": row for name, row in self.original_attacks.items()},
            "oracle": {k: float(np.mean(self.oracle_a[k])) for k in SCALARS},
            "retrain_seconds": self.retrain_seconds,
            "methods": self.scores,
            "failures": self.failures,
            "seeds": {role: [seeds_for(cfg.seed, role, cfg.num_models)[0], seeds_for(cfg.seed, role, cfg.num_models)[-1]]
                      for role in ROLE_OFFSETS},
            "timings_seconds": self.timings,
            "versions": self.versions,
        }


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu")
    return device


def submission_entry(entry) -> tuple[str, dict, str | None]:
    """An entry of ``EvalConfig.submissions``, ``(spec, options)`` or ``(spec, options, batches)``, as the triple."""
    spec, options, *batches = entry
    return spec, options, (batches[0] if batches else None)


def seeds_for(seed: int, role: str, count: int) -> list[int]:
    """Distinct, reproducible seeds per role: ``seed * 10^6 + role * 10^4 + i``."""
    return [seed * 1_000_000 + ROLE_OFFSETS[role] * 10_000 + i for i in range(count)]


class Evaluation:
    """One evaluation: prepared in the constructor, phases as methods, :meth:`run` for all of it.

    ``methods``: the methods to score (default: built from ``config.submissions`` plus the kit baseline
    when ``config.baseline``). ``executor``: any :class:`~mock_evaluator.engine.protocol.Executor`; by default
    a local one with ``config.workers`` processes, made when first needed and closed by :meth:`close`.
    ``checkpoint_zip``: score a Kaggle ``submission.zip`` (its structure is checked here, before any training).
    """

    def __init__(self, config: EvalConfig, methods: list[Method] | None = None, executor: Executor | None = None,
                 log=print, checkpoint_zip: str | None = None):
        self.config, self.log = config, log
        self.device = resolve_device(config.device)
        self.cache = Path(config.cache_dir)
        self.timings: dict[str, float] = {}
        self.setting = load_setting(config.dataset, config.data_dir, **config.setting_options)
        if methods is None:
            methods = self._methods_from_config(checkpoint_zip)
        names = [m.name for m in methods]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"two methods share the name(s) {duplicates}: give them different options or files")
        self.methods = list(methods)
        self._executor = executor
        self._owns_executor = executor is None
        self._checked: set[str] = set()   # methods whose module loaded and took their options
        try:  # before anything is trained
            self.check_methods(self.methods)
        except BaseException:
            self.close()
            raise
        self._zip_states = None
        if checkpoint_zip is not None:  # check the zip's structure before any training
            from unlearning_mock.mock_evaluator.kaggle.checkpoint_zip import iter_checkpoints

            # one checkpoint in memory at a time: 512 ResNet-18 state dicts would need ~23 GB
            states = iter_checkpoints(checkpoint_zip, self.setting.make_model, expected_count=config.num_models)
            self._zip_states = itertools.chain([next(states)], states)
        self.log(self.setting.data.summary())
        self.log(f"cache: {self.cache.resolve()}")
        self.backends, self.backend_record = conv_backend.resolve_backends(
            config.conv_backend, self.setting, self.oracle_chunk(), self.device, self.cache, JOB_THREADS, self.log)
        chosen = self.backends
        self.log(f"convolution backend: {chosen.one_model} for one-model training, {chosen.fused} for fused training, "
                 f"{chosen.figures} for one model's figures ({self.backend_record['chosen_by']})")
        t = time.perf_counter()
        with job_threads():
            with conv_backend.using(self.backends.one_model):   # the original is one-model work
                original = setting_original(self.setting, self.cache, self.device, self.log)
            if self.setting.original_weights is None:
                self.timings["original"] = time.perf_counter() - t
            with conv_backend.using(self.backends.figures):
                self.original_figures = model_figures(original.model, self.setting.data)
        self.context = J.Context(config.dataset, config.data_dir, tuple(sorted(config.setting_options.items())),
                                 str(original.path), self.device, self.backends)
        self._original_digest = original.sha256[:16]
        self._retrain_seconds: float | None = None

    def _methods_from_config(self, checkpoint_zip) -> list[Method]:
        cfg = self.config
        if checkpoint_zip is not None:
            methods = [zip_method(checkpoint_zip)]
        else:
            methods = [method_from_spec(spec, options, baseline_function=self.setting.baseline,
                                       batches=batches or cfg.batches, log=self.log)
                       for spec, options, batches in map(submission_entry, cfg.submissions)]
        if cfg.baseline and not any(m.kind == "baseline" for m in methods):
            methods.append(method_from_spec("baseline", name="baseline", baseline_function=self.setting.baseline))
        return methods

    @property
    def submissions(self) -> list[Method]:
        """The methods the user asked for (everything but the kit baseline)."""
        return [m for m in self.methods if m.kind != "baseline"]

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            cfg = self.config
            self._executor = make_executor(cfg.workers or default_workers(self.device), cfg.executor,
                                           cfg.ray_address, cfg.gpus_per_job)
        return self._executor

    def close(self) -> None:
        if self._owns_executor and self._executor is not None:
            self._executor.close()
            self._executor = None

    # -- the whole run ----------------------------------------------------------------------------
    def run(self) -> EvaluationOutcome:
        """Oracles, the timing retrain, every method's runs, scoring. A method that breaks the contract is
        reported in the outcome's ``failures`` (the others are still scored)."""
        started = time.perf_counter()
        try:
            oracle_a = self.oracles("oracle-A")
            oracle_b = self.oracles("oracle-B")
            retrain = self.retrain_seconds()
            runs, failures = {}, {}
            first_of = {}   # a method's identity -> the first method with it: a twin's runs would be the same runs
            for method in self.methods:
                twin = first_of.setdefault(self._identity(method), method.name) if method.fingerprint else method.name
                if twin != method.name:
                    self.log(f"{method.name}: the same code, options and batches as {twin}; its runs are {twin}'s")
                    if twin in runs:
                        runs[method.name] = runs[twin]
                    else:
                        failures[method.name] = failures[twin]
                    continue
                try:
                    runs[method.name] = self.runs(method)
                except SubmissionError as error:
                    failures[method.name] = str(error)
        finally:
            self.close()
        t = time.perf_counter()
        scores = {}
        for method in self.methods:
            if method.name in runs:
                scores[method.name] = score_method(method.name, runs[method.name], oracle_a, self.config.attack_models,
                                                   retrain, self.config.time_budget)
        oracle_reference = score_method(ORACLE_REFERENCE, oracle_b, oracle_a, self.config.attack_models)
        n = len(oracle_a["forget_conf"])   # the untouched original as N identical copies, as the leaderboard scores it
        original_attacks = attack_rows(np.repeat(self.original_figures["forget_conf"][None], n, axis=0),
                                       oracle_a["forget_conf"])
        self.timings["scoring"] = time.perf_counter() - t
        self.timings["total"] = time.perf_counter() - started
        return EvaluationOutcome(
            config=self.config, device=self.device, methods=scores, oracle_reference=oracle_reference,
            failures=failures, run_figures=runs, oracle_a=oracle_a, oracle_b=oracle_b,
            original_figures=self.original_figures, original_attacks=original_attacks,
            original=self._original_record(original_attacks), retrain_seconds=retrain, timings=self.timings,
            conv_backend=self.backend_record, methods_asked=self._methods_record(), setting=self._setting_record(),
            versions={"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                      "platform": platform.platform()})

    def default_run_name(self) -> str:
        cfg = self.config
        first = self.submissions[0] if self.submissions else self.methods[0]
        source = Path(first.target).stem if first.kind in ("file", "notebook", "zip") else first.slug
        more = f"+{len(self.submissions) - 1}" if len(self.submissions) > 1 else ""
        return f"{cfg.dataset}-{source}{more}-n{cfg.num_models}-seed{cfg.seed}"

    def report_folder(self) -> Path:
        """Where the report goes: ``output_dir/run_name`` (relative to the current folder by default)."""
        return Path(self.config.output_dir) / (self.config.run_name or self.default_run_name())

    # -- phases -----------------------------------------------------------------------------------
    def oracles(self, role: str) -> dict:
        """Train (or load) one set of N oracles ("oracle-A" or "oracle-B") in chunks; each chunk's figures
        are saved as soon as it finishes (the oracle weights themselves are not kept)."""
        cfg = self.config
        seeds = seeds_for(cfg.seed, role, cfg.num_models)
        chunk = self.oracle_chunk()
        folder = self.oracle_folder()
        chunks = [tuple(seeds[i:i + chunk]) for i in range(0, len(seeds), chunk)]
        jobs = [J.OracleJob(self.context, c, i) for i, c in enumerate(chunks)]
        return self._cached_jobs(f"{role}: retraining", role, folder,
                                 [folder / f"seeds-{c[0]}-{c[-1]}.npz" for c in chunks], jobs)

    def oracle_folder(self) -> Path:
        """Where the oracles' figures are cached (both sets: their seeds differ)."""
        key = self.key("oracles", self.oracle_chunk(), self.backends.fused)
        return self.cache / "oracles" / f"{self.setting.name}-{key}"

    def runs_folder(self, method: Method) -> Path:
        """Where ``method``'s runs are cached: one file per call, or per fused chunk for a fused kit baseline."""
        if self._fuses(method):
            chunk, backends = self.oracle_chunk(), self.backends
            key = self.key("runs-fused", self._identity(method), chunk, backends.fused, backends.one_model,
                           backends.figures)
            return self.cache / "runs" / f"{self.setting.name}-{method.slug}-fused-{key}"
        key = self.key("runs", self._identity(method), self.backends.one_model, self.backends.figures)
        return self.cache / "runs" / f"{self.setting.name}-{method.slug}-{key}"

    def _identity(self, method: Method) -> tuple:
        """What makes ``method``'s runs these runs: its fingerprint, the batch format its loaders yield, and for the
        kit baseline the setting's baseline."""
        identity = (method.fingerprint, self.setting.batch_format(method.batches))
        return identity + (self.setting.baseline_name,) if method.kind == "baseline" else identity

    def _fuses(self, method: Method) -> bool:
        """Whether ``method`` is the kit baseline and trains fused (:mod:`starter_kit.fused_baseline`)."""
        return method.kind == "baseline" and can_fuse_baseline(self.setting)

    def oracle_chunk(self) -> int:
        """Models per fused training job (oracles, a fused kit baseline): ``--oracle-chunk`` or, with ``auto``, what
        fits the device (CPU: 128 small models or 8 ResNet-18s; CUDA: measured from free memory), and for a small N
        at most N / :data:`SMALL_N_CHUNKS`, so that the CPU's two default workers each get a chunk. Part of the
        oracles' cache key; the --workers count is not, so the same seed gives the same figures whatever it is."""
        if self.config.oracle_chunk != "auto":
            return self.config.oracle_chunk
        from unlearning_mock.starter_kit.training import auto_oracle_chunk

        workers = self.config.workers or default_workers(self.device)
        fits = auto_oracle_chunk(self.setting.make_model, self.device, self.setting.recipe,
                                 tuple(self.setting.data.train_inputs.shape[1:]), workers=workers)
        return max(1, min(fits, -(-self.config.num_models // SMALL_N_CHUNKS)))

    def retrain_seconds(self) -> float:
        """Seconds of one ordinary retrain, measured with every worker busy (as during the runs)."""
        if self._retrain_seconds is None:
            t = time.perf_counter()
            workers = self.executor.workers
            jobs = [J.RetrainTimingJob(self.context, (s,)) for s in seeds_for(self.config.seed, "timing", workers)]
            seconds = []
            for job, result in self.executor.map_unordered(jobs):
                if result.error is not None:  # the project's own training failed (e.g. a worker was killed)
                    raise EvaluatorFailure(f"timing one ordinary retrain failed (not the submission's fault): "
                                           f"{result.error}")
                seconds.append(result.seconds[0])
            self.timings["retrain_timing"] = time.perf_counter() - t
            self._retrain_seconds = float(np.mean(seconds))
            self.log(f"one ordinary retrain on the retain set: {self._retrain_seconds:.2f} s")
        return self._retrain_seconds

    def check_methods(self, methods: list[Method]) -> None:
        """Load each method's module in a worker's child process (never here) and check the options it is
        given: a ValueError naming the method before any of its runs when it cannot be loaded, defines no
        ``unlearning`` or does not take an option."""
        todo = [m for m in methods if m.kind in ("file", "notebook", "module") and m.name not in self._checked]
        if not todo:
            return
        limits = Limits(self.config.run_timeout or RUN_TIMEOUT_FLOOR, self.run_memory())
        for job, result in self.executor.map_unordered([J.ProbeJob(m, limits) for m in todo]):
            if result.error is not None:
                if result.fault == SUBMISSION:
                    raise ValueError(result.error)
                raise EvaluatorFailure(f"loading {result.error}")
            self._checked.add(job.method.name)

    def runs(self, method: Method) -> dict:
        """N unlearning calls of ``method``, each on a fresh copy of the original; each model saved as it
        finishes. Raises :class:`SubmissionError` (naming the model) when the method breaks the contract."""
        cfg = self.config
        if method.kind == "zip":
            return self._checkpoint_runs(method)
        self.check_methods([method])
        if self._fuses(method):
            return self._fused_baseline_runs(method)
        return self._calls(method, self.runs_folder(method), cfg.num_models)

    def _calls(self, method: Method, folder: Path, count: int) -> dict:
        """The first ``count`` of ``method``'s N one-model calls, each saved as ``folder/model-i.npz``."""
        seeds = seeds_for(self.config.seed, "unlearning", self.config.num_models)
        limits = Limits(self.run_timeout(), self.run_memory())
        jobs = [J.UnlearningJob(self.context, method, i, (seeds[i],), limits) for i in range(count)]
        return self._cached_jobs(f"{method.name}: unlearning", method.name, folder,
                                 [folder / f"model-{i:05d}.npz" for i in range(count)], jobs)

    def _fused_baseline_runs(self, method: Method) -> dict:
        """The kit baseline's N runs trained fused in chunks, as the oracles (the same models its one-model calls
        give, :mod:`starter_kit.fused_baseline`), and its time from :data:`TIMED_BASELINE_CALLS` one-model calls
        (runs 0, 1, ...): ``seconds`` holds those calls' times only."""
        cfg = self.config
        seeds = seeds_for(cfg.seed, "unlearning", cfg.num_models)
        chunk, folder = self.oracle_chunk(), self.runs_folder(method)
        chunks = [tuple(seeds[i:i + chunk]) for i in range(0, len(seeds), chunk)]
        figures = self._cached_jobs(f"{method.name}: unlearning (fused)", method.name, folder,
                                    [folder / f"seeds-{c[0]}-{c[-1]}.npz" for c in chunks],
                                    [J.FusedBaselineJob(self.context, c, i) for i, c in enumerate(chunks)])
        timed = self._calls(method, folder / "timed", min(TIMED_BASELINE_CALLS, cfg.num_models))
        return {**figures, "seconds": timed["seconds"]}

    def run_timeout(self) -> float:
        """Seconds one unlearning run may take before it is stopped: ``config.run_timeout``, else
        ``RUN_TIMEOUT_FACTOR`` x the budgeted time of a run (time budget x the retrain measured in this run),
        at least ``RUN_TIMEOUT_FLOOR`` (worker start-up and a loaded machine must never trip it)."""
        if self.config.run_timeout is not None:
            return self.config.run_timeout
        budgeted = self.config.time_budget * self.retrain_seconds()
        return max(RUN_TIMEOUT_FLOOR, RUN_TIMEOUT_FACTOR * budgeted)

    def run_memory(self) -> int:
        """Bytes one unlearning call may allocate beyond what its worker holds: ``config.run_memory``, else a
        quarter of this machine's memory."""
        return self.config.run_memory if self.config.run_memory is not None else default_memory()

    def _cached_jobs(self, description: str, label: str, folder: Path, paths: list[Path], jobs: list) -> dict:
        """Load what ``paths`` already hold, run the missing jobs (progress bar), save each result as it
        comes, and return the arrays of all of them concatenated in order. A failed job raises
        :class:`SubmissionError` when it is the submission's fault, else
        :class:`~mock_evaluator.engine.protocol.EvaluatorFailure`."""
        cfg = self.config
        results = [load_arrays(path) for path in paths]
        todo = [job for job, result in zip(jobs, results) if result is None]
        total = sum(len(job.seeds) for job in jobs)
        t = time.perf_counter()
        if not todo:
            self.log(f"{label}: {total} models loaded from the cache ({folder})")
        else:
            bar = tqdm(total=total, desc=description, unit="model", disable=not cfg.progress,
                       initial=total - sum(len(job.seeds) for job in todo))
            error = None
            try:
                for job, result in self.executor.map_unordered(todo):
                    if result.error is not None:
                        error = result
                        break
                    arrays = result.arrays(job)
                    save_arrays(paths[job.slot], arrays)
                    results[job.slot] = arrays
                    bar.update(len(job.seeds))
            finally:
                bar.close()
            if error is not None:
                saved = f"{sum(r is not None for r in results)} of {len(paths)} finished results are saved in {folder}"
                if error.fault == SUBMISSION:
                    raise SubmissionError(f"{label} failed on {error.error}\n{saved}; fix the problem and run again "
                                          "to continue from there.")
                raise EvaluatorFailure(f"{label} failed on {error.error}\nThis is not the submission's fault. {saved}; "
                                       "run the same command again to continue from there.")
        self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - t
        return {name: np.concatenate([r[name] for r in results]) for name in results[0]}

    def _checkpoint_runs(self, method: Method) -> dict:
        """The figures of a submission.zip's checkpoints (the notebook already ran the unlearning)."""
        figures = []
        for index, state in enumerate(tqdm(self._zip_states, desc=f"{method.name}: scoring checkpoints", unit="model",
                                           total=self.config.num_models, disable=not self.config.progress)):
            model = self.setting.make_model()
            model.load_state_dict(state)
            try:
                with conv_backend.using(self.backends.figures):
                    figures.append(model_figures(model.to(self.device), self.setting.data))
            except ModelFailure as failure:
                raise SubmissionError(f"checkpoint {index}: {failure}") from None
        return stack_figures(figures)

    def key(self, *parts) -> str:
        """The cache key of everything that determines a result: data, model, recipe, original weights,
        device, library versions, the evaluator's code that computes the results
        (:func:`~mock_evaluator.engine.jobs.code_fingerprint`) and ``parts`` (the phase, the chunk size, the
        convolution backend the work ran with, the method's fingerprint)."""
        s = self.setting
        return cache_hash(s.data.fingerprint(), model_key(s.make_model()), s.recipe.as_dict(), self._original_digest,
                          self.device, torch.__version__.split("+")[0], np.__version__, J.code_fingerprint(), *parts)

    # -- the outcome's record ---------------------------------------------------------------------
    def _original_record(self, original_attacks: dict) -> dict:
        """The untouched original's accuracies, its kit attack accuracy and its attacks' columns."""
        figures = self.original_figures
        return {**{k: float(figures[k]) for k in SCALARS},
                "attack_accuracy": forget_vs_test_attack(figures["forget_loss"], figures["test_loss"]),
                **attack_scalars(original_attacks)}

    def _methods_record(self) -> list[dict]:
        return [{"name": m.name, "kind": m.kind, "target": m.target, "options": dict(m.options),
                 "fingerprint": m.fingerprint, "batches": self.setting.batch_format(m.batches)} for m in self.methods]

    def _setting_record(self) -> dict:
        setting = self.setting
        return {"name": setting.name, "data": setting.data.summary(), "recipe": setting.recipe.as_dict(),
                "model": model_key(setting.make_model()), "batch_size": setting.batch_size,
                "baseline": setting.baseline_name, "original": self.context.original_path,
                "forget_size": len(setting.data.forget_idx)}
