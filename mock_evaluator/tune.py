"""``unlearning-mock tune``: an Optuna study of one method's options on a tuning seed, for a fair comparison.

Each trial is an evaluation of the method with the trial's options at a small N (default 32) on the **tuning
seed**: its own oracles (set A only, cached like every evaluation's), its own unlearning seeds, one timing retrain
per run of the command. The objective is the challenge's final score; a trial whose mean time is over the time budget is
*infeasible*: it is pruned and has no score. A trial whose method fails (raises, breaks the contract, times out) is
a failed trial with its message. The evaluation seed, which the leaderboard reports, is never tuned on: a tuning
seed equal to it is refused.

The study lives in Optuna's SQLite storage under the cache (``CACHE/tune/<key>.db``, the key from the method's
fingerprint, the fixed options, the setting, N, the tuning seed, the time budget and the space), so an interrupted
study resumes: the same command again counts the finished trials, runs the interrupted one again with its options
(its finished models come from the cache) and then the rest, up to ``trials`` in all. Its first trial is the
method's defaults. Progress shows one line per trial.

The result (:class:`TuneResult`): the best options, the study as ``trials.csv``, a plot (``tune.png``: score per
trial, the options that mattered), ``best.json`` and the one command that evaluates the best options at N = 512 on
the evaluation seed; ``record`` also writes them into a tuned-options file (:mod:`mock_evaluator.tuned_options`)
that ``leaderboard --tuned`` reads. The search space is :mod:`mock_evaluator.tune_space`'s. ``optuna`` is imported
only here, so an evaluation that does not tune never loads it.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from unlearning_mock.mock_evaluator.evaluate import EvalConfig, Evaluation, SubmissionError
from unlearning_mock.mock_evaluator.method import Method, method_from_spec
from unlearning_mock.mock_evaluator.reports.study import write_study_outputs
from unlearning_mock.mock_evaluator.scoring.score import score_method
from unlearning_mock.mock_evaluator.tune_space import (Dimension, EntryPoint, derive_space, entry_point_defaults,
                                                       start_point)
from unlearning_mock.mock_evaluator.tuned_options import options_text, record_tuned, value_text
from unlearning_mock.starter_kit.training import cache_hash

TUNING_SEED = 1
TUNING_MODELS = 32
EVALUATION_MODELS = 512
TRIALS = 30
PROGRAM = "unlearning-mock"

INFEASIBLE = "infeasible"     # a pruned trial's user attribute: over the time budget
ERROR = "error"               # a failed trial's user attribute: what the method did wrong
SCORES = ("forget_quality", "retain_acc", "forget_acc", "test_acc", "time_fraction")


@dataclass(frozen=True)
class TuneRequest:
    """What to tune and how: the method (``spec``, its fixed ``options`` and ``batches``, its registry ``name``
    where it is a registered method), the trial budget, the seeds, the space's overrides, where to record."""

    spec: str
    options: dict
    batches: str | None = None
    registry_name: str | None = None
    trials: int = TRIALS
    evaluation_seed: int = 0
    evaluation_models: int = EVALUATION_MODELS
    overrides: tuple[Dimension, ...] = ()
    only: tuple[str, ...] = ()
    record: str | None = None

    def __post_init__(self):
        if self.trials < 1:
            raise ValueError(f"--trials must be >= 1, got {self.trials}")
        if self.record is not None and self.registry_name is None:
            raise ValueError("--record keeps the tuned options of registered methods (leaderboard --tuned reads them by "
                             "registry name): tune with --method NAME")


@dataclass
class TuneResult:
    """What a study produced."""

    best_options: dict | None   # every option to evaluate with (the fixed ones and the best trial's); None: none feasible
    best_score: float | None    # its final score at the tuning seed
    trials: pd.DataFrame        # trials.csv
    space: tuple[Dimension, ...]
    command: str | None         # the evaluation of the best options at N = 512 on the evaluation seed
    tune_command: str           # the command that runs (or resumes) this study
    folder: Path
    paths: list[Path]
    storage: Path               # the study's SQLite file
    counted: int                # finished trials (complete, infeasible or failed)
    seconds: float              # wall time of this run's trials

    def __repr__(self) -> str:
        best = f"{self.best_score:.4f} with {self.best_options}" if self.best_options is not None else "no feasible trial"
        return f"TuneResult({self.folder}: {self.counted} trials, best {best})"


def check_seeds(tuning_seed: int, evaluation_seed: int) -> None:
    if tuning_seed == evaluation_seed:
        raise ValueError(f"the tuning seed ({tuning_seed}) is the evaluation seed: options tuned on the seed that scores "
                         f"them would be scored on their own training data; choose another --tuning-seed (e.g. "
                         f"{evaluation_seed + 1})")


def run_tune(config: EvalConfig, request: TuneRequest, log=print) -> TuneResult:
    """Run (or resume) the study of ``request`` with ``config`` (its ``seed`` is the tuning seed, ``num_models`` the
    tuning N; the kit baseline is not scored); write its outputs; return them."""
    import optuna

    check_seeds(config.seed, request.evaluation_seed)
    evaluation, base, entry, space = prepare(config, request, log)
    try:
        storage = study_storage(evaluation, base, request, space)
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        url = f"sqlite:///{storage}"
        study = optuna.create_study(storage=url, study_name=storage.stem, direction="maximize", load_if_exists=True)
        if not study.trials:
            study.enqueue_trial(start_point(entry, space), user_attrs={"start": "the method's defaults"})
        recover_interrupted(study)
        counted = len(counted_trials(study))
        study.sampler = optuna.samplers.TPESampler(seed=config.seed * 100_000 + len(study.trials))
        tune_command = tune_command_line(config, request, space)
        log(f"study: {storage} ({counted} of {request.trials} trials finished); resume with: {tune_command}")
        started = time.perf_counter()
        if counted < request.trials:
            oracle_a = evaluation.oracles("oracle-A")
            retrain = evaluation.retrain_seconds()
            objective = Objective(evaluation, request, space, oracle_a, retrain, counted, log)
            study.optimize(objective, n_trials=request.trials - counted, catch=(SubmissionError,))
        seconds = time.perf_counter() - started
    finally:
        evaluation.close()
    return finish(study, config, request, space, storage, tune_command, seconds, log)


def prepare(config: EvalConfig, request: TuneRequest, log=print) -> tuple[Evaluation, Method, EntryPoint, tuple]:
    """What every trial shares: the evaluation on the tuning seed (setting, original, executor; no kit baseline),
    the method with its fixed options, its entry point's defaults and the search space. Close the evaluation after."""
    base = method_from_spec(request.spec, request.options, name=request.registry_name, batches=request.batches, log=log)
    evaluation = Evaluation(replace(config, baseline=False), methods=[base], log=log)
    try:
        profile = evaluation.setting.profile
        entry = entry_point_defaults(base, profile)
        space = derive_space(entry, request.options, profile, config.time_budget, request.overrides, request.only)
    except BaseException:
        evaluation.close()
        raise
    log("search space: " + "; ".join(d.describe() for d in space))
    return evaluation, base, entry, space


def study_storage(evaluation: Evaluation, base: Method, request: TuneRequest, space: tuple[Dimension, ...]) -> Path:
    """The study's SQLite file under the cache, named by everything that makes its trials these trials."""
    cfg = evaluation.config
    key = cache_hash("tune", cfg.dataset, sorted(cfg.setting_options.items()), base.fingerprint,
                     evaluation.setting.batch_format(base.batches), cfg.num_models, cfg.seed, cfg.time_budget,
                     evaluation.oracle_chunk(), [d.as_text() for d in space])
    folder = Path(cfg.cache_dir) / "tune"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{evaluation.setting.name}-{base.slug}-{key}.db"


def counted_trials(study) -> list:
    """The finished trials: complete, infeasible (pruned) and failed by the method (not the interrupted ones)."""
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (t.state == TrialState.FAIL and ERROR in t.user_attrs)]


def recover_interrupted(study) -> None:
    """Close the trials an interrupted run left running, and queue the options of every interrupted trial that
    no finished or queued trial has, so that the study runs them again (their finished models are cached)."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
    done = [t.params for t in counted_trials(study)]
    done += [t.params for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))]
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if ERROR not in trial.user_attrs and trial.params not in done:
            study.enqueue_trial(trial.params, user_attrs={"resumes": trial.number})
            done.append(trial.params)


class Objective:
    """One trial: the method with the trial's options, N runs on the tuning seed, scored against its oracles."""

    def __init__(self, evaluation: Evaluation, request: TuneRequest, space, oracle_a: dict, retrain: float,
                 counted: int, log):
        self.evaluation, self.request, self.space = evaluation, request, space
        self.oracle_a, self.retrain, self.log = oracle_a, retrain, log
        self.done = counted
        self.best: float | None = None

    def __call__(self, trial) -> float:
        import optuna

        self.done += 1
        searched = {d.name: d.suggest(trial) for d in self.space}
        options = {**self.request.options, **searched}
        where = f"trial {self.done}/{self.request.trials}"
        self.log(f"{where}: {options_text(searched)}")
        config, started = self.evaluation.config, time.perf_counter()
        method = method_from_spec(self.request.spec, options, batches=self.request.batches)
        try:
            figures = self.evaluation.runs(method)
        except SubmissionError as error:
            trial.set_user_attr(ERROR, str(error).splitlines()[0])
            self.log(f"{where}: FAILED ({str(error).splitlines()[0]})")
            raise
        score = score_method(method.name, figures, self.oracle_a, config.attack_models, self.retrain, config.time_budget)
        for name in SCORES:
            trial.set_user_attr(name, getattr(score, name))
        seconds = time.perf_counter() - started
        if score.over_budget:
            trial.set_user_attr(INFEASIBLE, True)
            self.log(f"{where}: INFEASIBLE, over the time budget ({score.time_fraction:.3f} of a retrain > "
                     f"{config.time_budget}) [{seconds:.0f} s]")
            raise optuna.TrialPruned(f"over the time budget: {score.time_fraction:.3f} > {config.time_budget}")
        self.best = score.final_score if self.best is None else max(self.best, score.final_score)
        self.log(f"{where}: score {score.final_score:.4f} (F {score.forget_quality:.3f}, retain {score.retain_acc:.3f}, "
                 f"test {score.test_acc:.3f}, time {score.time_fraction:.3f}) [{seconds:.0f} s; best of this run "
                 f"{self.best:.4f}]")
        return score.final_score


def finish(study, config: EvalConfig, request: TuneRequest, space, storage: Path, tune_command: str, seconds: float,
           log) -> TuneResult:
    """The best trial, the outputs, the evaluation command; the record where asked."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = max(complete, key=lambda t: t.value) if complete else None
    options = {**request.options, **best.params} if best is not None else None
    command = evaluation_command(config, request, options) if options is not None else None
    folder = Path(config.output_dir) / (config.run_name or
                                        f"tune-{config.dataset}-{_base_name(request)}-n{config.num_models}-seed{config.seed}")
    summary = {"method": request.registry_name or request.spec, "best_options": options,
               "best_score": best.value if best else None, "best_trial": best.number + 1 if best else None,
               "trials": request.trials, "tuning_seed": config.seed, "num_models": config.num_models,
               "time_budget": config.time_budget, "space": [d.as_text() for d in space], "command": command,
               "tune_command": tune_command, "storage": str(storage), "run_seconds": seconds,
               "study_seconds": study_seconds(study)}
    frame, paths = write_study_outputs(study, summary, folder)
    counted = len(counted_trials(study))
    if best is None:
        log(f"\nno feasible trial among {counted}: every one was over the time budget or failed (see {folder})")
    else:
        log(f"\nbest of {counted} trials (trial {best.number + 1}): score {best.value:.4f} at N = {config.num_models} on "
            f"tuning seed {config.seed} with {options_text(best.params)}")
        log(f"evaluate it at N = {request.evaluation_models} on the evaluation seed {request.evaluation_seed}:\n  {command}")
    log(f"written to {folder}/ ({', '.join(p.name for p in paths)})")
    if request.record is not None and best is not None and counted >= request.trials:
        entry = {"options": options, "trials": request.trials, "tuning_seed": config.seed,
                 "num_models": config.num_models, "time_budget": config.time_budget, "tuning_score": best.value,
                 "defaults_score": defaults_score(frame), "best_trial": best.number + 1,
                 "trial_states": {str(k): int(v) for k, v in frame["state"].value_counts().items()},
                 "study_seconds": summary["study_seconds"], "command": tune_command}
        log(f"recorded in {record_tuned(Path(request.record), config.dataset, request.registry_name, entry)}")
    return TuneResult(best_options=options, best_score=best.value if best else None, trials=frame, space=space,
                      command=command, tune_command=tune_command, folder=folder, paths=paths, storage=storage,
                      counted=counted, seconds=seconds)


def defaults_score(frame: pd.DataFrame) -> float | None:
    """The score of the study's first trial, the method's defaults (None: it was infeasible or failed)."""
    first = frame[frame["trial"] == 1]
    return float(first["score"].iloc[0]) if len(first) and first["state"].iloc[0] == "scored" else None


def study_seconds(study) -> float:
    """The summed durations of the study's finished trials (every run's)."""
    return float(sum(t.duration.total_seconds() for t in counted_trials(study) if t.duration is not None))


def _base_name(request: TuneRequest) -> str:
    name = request.registry_name or Path(request.spec).stem or request.spec.rsplit(".", 1)[-1]
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)



def _setting_flags(config: EvalConfig) -> list[str]:
    """The command-line flags of ``config``'s setting and budget (those that differ from the defaults)."""
    flags = ["--dataset", config.dataset]
    if config.data_dir is not None:
        flags += ["--data-dir", config.data_dir]
    for name, value in sorted(config.setting_options.items()):
        flag = "--" + name.replace("_", "-")
        flags += [flag] if value is True else [flag, str(value)]
    if config.time_budget != EvalConfig.time_budget:
        flags += ["--time-budget", repr(config.time_budget)]
    return flags


def _method_flags(request: TuneRequest, options: dict) -> list[str]:
    spec = request.spec.removeprefix("unlearning_mock.")
    flags = ["--submission", spec]
    for key, value in options.items():
        flags += ["--submission-option", f"{key}={value_text(value)}"]
    return flags + (["--batches", request.batches] if request.batches else [])


def evaluation_command(config: EvalConfig, request: TuneRequest, options: dict) -> str:
    """The command that scores ``options`` at N = ``request.evaluation_models`` on the evaluation seed."""
    words = [PROGRAM, *_setting_flags(config), "--num-models", str(request.evaluation_models),
             "--seed", str(request.evaluation_seed), *_method_flags(request, options)]
    return shlex.join(words)


def tune_command_line(config: EvalConfig, request: TuneRequest, space) -> str:
    """The command that runs (or resumes) this study, the space spelt out."""
    if request.registry_name is None:
        method = _method_flags(request, request.options)
    else:
        from unlearning_mock.methods.registry import get_entry

        own = get_entry(request.registry_name).options
        method = ["--method", request.registry_name]
        for key, value in request.options.items():
            if key not in own or own[key] != value:
                method += ["--submission-option", f"{key}={value_text(value)}"]
    words = [PROGRAM, "tune", *method, *_setting_flags(config), "--trials", str(request.trials),
             "--num-models", str(config.num_models), "--tuning-seed", str(config.seed),
             "--seed", str(request.evaluation_seed)]
    for d in space:
        words += ["--space", d.as_text()]
    return shlex.join(words)


def registry_request(name: str, options: dict | None = None, **fields) -> TuneRequest:
    """The request for the registered method ``name`` (its entry's options fixed, then ``options``)."""
    from unlearning_mock.methods.registry import get_entry

    entry = get_entry(name)
    return TuneRequest(spec=entry.module, options={**entry.options, **(options or {})}, registry_name=name, **fields)

