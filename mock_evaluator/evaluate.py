"""The mock evaluator: N unlearned copies against N retrained oracles, scored like the challenge.

Phases (each with a progress bar, each persisting its finished models so an interruption loses
nothing): the original model; oracle set A (the reference every method is scored against); oracle
set B (exact retraining scored as if it were a submission: the best a method can hope for at this N);
the time of one ordinary retrain (the efficiency rule's yardstick); the starter kit's baseline runs;
the submission's runs; then scoring and the report.
"""

from __future__ import annotations

import hashlib
import itertools
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mock_evaluator import jobs as J
from mock_evaluator.executor import default_workers, make_executor
from mock_evaluator.figures import model_figures, stack_figures
from mock_evaluator.scoring import MethodScore, score_method
from mock_evaluator.store import load_arrays, save_arrays
from starter_kit.attack import forget_vs_test_attack
from starter_kit.original import load_or_train_original
from starter_kit.settings import load_setting
from starter_kit.training import cache_hash, model_key

MAX_MODELS = 10_000
ROLE_OFFSETS = {"oracle-A": 1, "oracle-B": 2, "submission": 3, "baseline": 4, "timing": 5}
ORACLE_CHUNK = 128


class SubmissionError(RuntimeError):
    """The submission broke the contract for some model; the message names it. Finished work is on disk."""


@dataclass
class EvalConfig:
    dataset: str = "digits"
    data_dir: str | None = None
    setting_options: dict = field(default_factory=dict)
    submission: str = "submission/unlearning.py"
    num_models: int = 512
    seed: int = 0
    device: str = "auto"
    output_dir: str = "outputs"
    run_name: str | None = None
    cache_dir: str = ".cache"
    time_budget: float = 0.2
    warn_only: bool = False
    workers: int | None = None
    attack_models: int = 32
    baseline: bool = True
    oracle_chunk: int = ORACLE_CHUNK
    progress: bool = True

    def __post_init__(self):
        if not 2 <= self.num_models <= MAX_MODELS:
            raise ValueError(f"--num-models must lie in [2, {MAX_MODELS}], got {self.num_models}")
        if self.time_budget <= 0:
            raise ValueError(f"--time-budget must be positive, got {self.time_budget}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"--device must be auto, cpu or cuda, got {self.device!r}")


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu")
    return device


def seeds_for(seed: int, role: str, count: int) -> list[int]:
    """Distinct, reproducible seeds per role: ``seed * 10^6 + role * 10^4 + i``."""
    return [seed * 1_000_000 + ROLE_OFFSETS[role] * 10_000 + i for i in range(count)]


def file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


class Evaluation:
    """One evaluation run (see the module docstring); :meth:`run` returns the results dict."""

    def __init__(self, config: EvalConfig, log=print, checkpoint_zip: str | None = None):
        self.config, self.log = config, log
        self.checkpoint_zip = checkpoint_zip
        self.device = resolve_device(config.device)
        self.cache = Path(config.cache_dir)
        self.timings: dict[str, float] = {}
        self.submission = str(Path(config.submission).resolve())
        if checkpoint_zip is None:  # fail early on a missing file, an import error or a missing function
            J.load_unlearning_function(self.submission)

    # -- phases -----------------------------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.config
        started = time.perf_counter()
        self.setting = load_setting(cfg.dataset, cfg.data_dir, **cfg.setting_options)
        data = self.setting.data
        self.log(data.summary())
        original_path = self._original_path()
        self.context = J.Context(cfg.dataset, cfg.data_dir, tuple(sorted(cfg.setting_options.items())),
                                 str(original_path), self.device)
        original = self.setting.make_model()
        original.load_state_dict(torch.load(original_path, map_location="cpu", weights_only=True))
        self.original_figures = model_figures(original.to(self.device), data)
        if self.checkpoint_zip is not None:  # check the zip's structure before any training
            from mock_evaluator.checkpoint_zip import iter_checkpoints

            # one checkpoint in memory at a time: 512 ResNet-18 state dicts would need ~23 GB
            states = iter_checkpoints(self.checkpoint_zip, self.setting.make_model, expected_count=cfg.num_models)
            self._zip_states = itertools.chain([next(states)], states)
        workers = cfg.workers or default_workers(self.device)
        self.executor = make_executor(workers)
        try:
            oracle_a = self._oracles("oracle-A")
            oracle_b = self._oracles("oracle-B")
            retrain_seconds = self._time_retrain(workers)
            if self.checkpoint_zip is not None:
                runs = {"submission": self._checkpoint_runs(self._zip_states)}
            else:
                runs = {"submission": self._unlearning_runs("submission", self.submission)}
            if cfg.baseline:
                runs["baseline"] = self._unlearning_runs("baseline", J.BASELINE)
        finally:
            self.executor.close()
        t = time.perf_counter()
        scores = {"submission": score_method("submission", runs["submission"], oracle_a, cfg.attack_models,
                                             retrain_seconds, cfg.time_budget),
                  "oracle reference": score_method("oracle reference", oracle_b, oracle_a, cfg.attack_models)}
        if cfg.baseline:
            scores["baseline"] = score_method("baseline", runs["baseline"], oracle_a, cfg.attack_models,
                                              retrain_seconds, cfg.time_budget)
        self.timings["scoring"] = time.perf_counter() - t
        self.oracle_confidences = oracle_a["forget_conf"]
        self.timings["total"] = time.perf_counter() - started
        return self._results(scores, oracle_a, retrain_seconds)

    def default_run_name(self) -> str:
        cfg = self.config
        source = Path(self.checkpoint_zip).stem if self.checkpoint_zip else Path(cfg.submission).stem
        return f"{cfg.dataset}-{source}-n{cfg.num_models}-seed{cfg.seed}"

    def _checkpoint_runs(self, states) -> dict:
        """The figures of a submission.zip's checkpoints (the notebook already ran the unlearning)."""
        from mock_evaluator.figures import ModelFailure

        figures = []
        for index, state in enumerate(tqdm(states, desc="submission.zip: scoring checkpoints", unit="model",
                                           total=self.config.num_models, disable=not self.config.progress)):
            model = self.setting.make_model()
            model.load_state_dict(state)
            try:
                figures.append(model_figures(model.to(self.device), self.setting.data))
            except ModelFailure as failure:
                raise SubmissionError(f"checkpoint {index}: {failure}") from None
        return stack_figures(figures)

    def _original_path(self) -> Path:
        setting = self.setting
        if setting.original_weights is not None:
            return Path(setting.original_weights)
        t = time.perf_counter()
        from starter_kit.original import original_cache_path

        path = original_cache_path(setting.data, setting.make_model, setting.recipe, 0, self.cache)
        load_or_train_original(setting.data, setting.make_model, setting.recipe, 0, self.cache, self.device, self.log)
        self.timings["original"] = time.perf_counter() - t
        return path

    def _key(self, *parts) -> str:
        s = self.setting
        return cache_hash(s.data.fingerprint(), model_key(s.make_model()), s.recipe.as_dict(),
                          file_digest(self.context.original_path), self.device,
                          torch.__version__.split("+")[0], np.__version__, *parts)

    def _oracles(self, role: str) -> dict:
        """Train (or load) one set of N oracles in chunks; every finished chunk is saved at once."""
        cfg = self.config
        seeds = seeds_for(cfg.seed, role, cfg.num_models)
        chunk = cfg.oracle_chunk
        folder = self.cache / "oracles" / f"{self.setting.name}-{self._key('oracles', chunk)}"
        chunks = [tuple(seeds[i:i + chunk]) for i in range(0, len(seeds), chunk)]
        paths = [folder / f"seeds-{c[0]}-{c[-1]}.npz" for c in chunks]
        results = {i: load_arrays(p) for i, p in enumerate(paths)}
        todo = [J.OracleJob(self.context, c, i, role) for i, c in enumerate(chunks) if results[i] is None]
        t = time.perf_counter()
        if todo:
            bar = tqdm(total=cfg.num_models, desc=f"{role}: retraining", unit="model", disable=not cfg.progress,
                       initial=cfg.num_models - sum(len(j.seeds) for j in todo))
            for job, result in self.executor.map_unordered(J.run_job, todo):
                arrays = stack_figures(result.figures)
                arrays["seconds"] = np.array(result.seconds)
                arrays["seeds"] = np.array(job.seeds)
                save_arrays(paths[job.chunk], arrays)
                results[job.chunk] = arrays
                bar.update(len(job.seeds))
            bar.close()
        else:
            self.log(f"{role}: {cfg.num_models} oracles loaded from the cache ({folder})")
        self.timings[role] = time.perf_counter() - t
        return {name: np.concatenate([results[i][name] for i in range(len(chunks))]) for name in results[0]}

    def _time_retrain(self, workers: int) -> float:
        """Seconds of one ordinary retrain, measured with every worker busy (as during the runs)."""
        t = time.perf_counter()
        timing_jobs = [J.RetrainTimingJob(self.context, s) for s in seeds_for(self.config.seed, "timing", workers)]
        seconds = [r.seconds[0] for _, r in self.executor.map_unordered(J.run_job, timing_jobs)]
        self.timings["retrain_timing"] = time.perf_counter() - t
        self.log(f"one ordinary retrain on the retain set: {np.mean(seconds):.2f} s")
        return float(np.mean(seconds))

    def _unlearning_runs(self, role: str, method: str) -> dict:
        """N unlearning calls, each on a fresh copy of the original; each model saved as it finishes."""
        cfg = self.config
        identity = file_digest(method) if method != J.BASELINE else self.setting.baseline_name
        folder = self.cache / "runs" / f"{self.setting.name}-{role}-{self._key('runs', role, identity)}"
        seeds = seeds_for(cfg.seed, role, cfg.num_models)
        paths = [folder / f"model-{i:05d}.npz" for i in range(cfg.num_models)]
        results = {i: load_arrays(p) for i, p in enumerate(paths)}
        todo = [J.UnlearningJob(self.context, method, i, seeds[i]) for i in range(cfg.num_models) if results[i] is None]
        t = time.perf_counter()
        if todo:
            bar = tqdm(total=cfg.num_models, desc=f"{role}: unlearning", unit="model", disable=not cfg.progress,
                       initial=cfg.num_models - len(todo))
            errors = []
            for job, result in self.executor.map_unordered(J.run_job, todo):
                if result.error is not None:
                    errors.append(result.error)
                    break
                arrays = stack_figures(result.figures)
                arrays["seconds"] = np.array(result.seconds)
                arrays["seeds"] = np.array([job.seed])
                save_arrays(paths[job.index], arrays)
                results[job.index] = arrays
                bar.update(1)
            bar.close()
            if errors:
                done = sum(r is not None for r in results.values())
                raise SubmissionError(f"{role} ({method}) failed on {errors[0]}\n"
                                      f"{done} finished models are saved in {folder}; fix the problem and run again "
                                      "to continue from there.")
        else:
            self.log(f"{role}: {cfg.num_models} unlearning runs loaded from the cache ({folder})")
        self.timings[role] = time.perf_counter() - t
        return {name: np.concatenate([results[i][name] for i in range(cfg.num_models)]) for name in results[0]}

    # -- results ----------------------------------------------------------------------------------
    def _results(self, scores: dict[str, MethodScore], oracle_a: dict, retrain_seconds: float) -> dict:
        cfg = self.config
        setting = self.setting
        return {
            "config": {**asdict(cfg), "device_resolved": self.device, "submission_resolved": self.submission},
            "setting": {"name": setting.name, "data": setting.data.summary(), "recipe": setting.recipe.as_dict(),
                        "model": model_key(setting.make_model()), "batch_size": setting.batch_size,
                        "baseline": setting.baseline_name, "original": self.context.original_path,
                        "forget_size": len(setting.data.forget_idx)},
            "original": {**{k: float(self.original_figures[k]) for k in ("retain_acc", "forget_acc", "test_acc", "val_acc")},
                         "attack_accuracy": forget_vs_test_attack(self.original_figures["forget_loss"],
                                                                  self.original_figures["test_loss"])},
            "oracle": {k: float(np.mean(oracle_a[k])) for k in ("retain_acc", "forget_acc", "test_acc", "val_acc")},
            "retrain_seconds": retrain_seconds,
            "methods": {name: score for name, score in scores.items()},
            "seeds": {role: [seeds_for(cfg.seed, role, cfg.num_models)[0], seeds_for(cfg.seed, role, cfg.num_models)[-1]]
                      for role in ROLE_OFFSETS},
            "timings_seconds": self.timings,
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                         "platform": platform.platform()},
        }
