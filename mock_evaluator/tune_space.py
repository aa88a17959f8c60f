"""The search space of ``unlearning-mock tune``: derived from a method's entry point, overridable by the user.

A method's tunable options are the keyword parameters of its ``unlearning`` with a numeric default (a number, not a
bool) -- for a method declared with ``@unlearning_method`` its *resolved* defaults in the setting (the published
values with epochs scaled by the setting's profile, :meth:`~starter_kit.profile.SettingProfile.defaults`), for a
user's plain function its keyword defaults. Options given by the user (``--submission-option``) or by a registry
entry stay fixed. Each tunable option gets a range around its default by its name (:func:`dimension_for`):

* a learning rate (a name with the word ``lr`` or ``lrs``) or a weight decay (``decay``): log-uniform over a
  decade either side of the default;
* an epoch count (the word ``epochs``): a quarter of the default up to twice it, capped by the time budget
  (``time_budget`` x the retrain's epochs: one unlearning epoch passes over the retain set once, as one retrain
  epoch does), never below the default;
* another whole number (rounds, counts): half the default up to twice it;
* a fraction (a float strictly between 0 and 1: shares, switch points, small weights): half the default up to halfway
  to 1;
* another positive float (temperatures, loss weights): log-uniform over a quarter of the default to 4 times it;
* ``seed`` and ``momentum``, zero, negative and non-numeric defaults (tuples, strings, None): fixed at the default
  (``--space`` searches any of them).

The default always lies inside its range, so a study's first trial (the defaults) is a point of its space. The user
replaces or adds a range with ``NAME=LOW:HIGH[:log][:int]`` (:func:`parse_dimension`) and restricts the space to some
names (``only``). Reading the entry point runs the method's code, so it happens in a child process
(:func:`entry_point_defaults`), never in the driver, as every other load of a submission.
"""

from __future__ import annotations

import inspect
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from unlearning_mock.mock_evaluator.method import POSITIONAL, PROFILE, Method, load_function
from unlearning_mock.starter_kit.profile import SettingProfile

NOT_TUNED = ("seed", "momentum")   # a seed is no hyperparameter; momentum stays as published
LR_DECADES = 1.0            # learning rates and weight decays: this many decades either side of the default
EPOCH_RANGE = (0.25, 2.0)   # an epoch count: these multiples of the default (the upper one capped by the budget)
COUNT_RANGE = (0.5, 2.0)    # another whole number: these multiples of the default
SCALE_FACTOR = 4.0          # another positive float: log-uniform from default / this to default * this


@dataclass(frozen=True)
class Dimension:
    """One searched option: ``low`` .. ``high``, log-uniform when ``log``, whole numbers when ``integer``."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self):
        if not self.low <= self.high:
            raise ValueError(f"the range of {self.name} must have low <= high, got {self.low} .. {self.high}")
        if self.log and not self.low > 0:
            raise ValueError(f"a log-uniform range needs low > 0: {self.name} has {self.low}")

    def suggest(self, trial):
        """This option's value in an Optuna ``trial``."""
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def clip(self, value):
        """``value`` moved into the range (a default outside a user's range becomes its nearest end)."""
        value = min(max(value, self.low), self.high)
        return int(round(value)) if self.integer else float(value)

    def describe(self) -> str:
        kind = ", ".join(k for k, on in (("log", self.log), ("int", self.integer)) if on)
        return f"{self.name} in [{self.low:g}, {self.high:g}]" + (f" ({kind})" if kind else "")

    def as_text(self) -> str:
        """The ``NAME=LOW:HIGH[:log][:int]`` form :func:`parse_dimension` reads."""
        return f"{self.name}={self.low!r}:{self.high!r}" + (":log" if self.log else "") + (":int" if self.integer else "")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _words(name: str) -> set[str]:
    return set(name.lower().split("_"))


def dimension_for(name: str, default, profile: SettingProfile, time_budget: float) -> Dimension | None:
    """The range of option ``name`` around its ``default`` by the rules of the module doc; None: not tuned."""
    if name in NOT_TUNED or not _is_number(default) or default <= 0:
        return None
    words = _words(name)
    if words & {"lr", "lrs", "decay"}:
        spread = 10 ** LR_DECADES
        return Dimension(name, default / spread, default * spread, log=True)
    integer = isinstance(default, int)
    if "epochs" in words:
        budget_epochs = time_budget * profile.retrain_epochs
        high = max(default, min(EPOCH_RANGE[1] * default, budget_epochs))
        low = EPOCH_RANGE[0] * default
        return Dimension(name, max(1, math.floor(low)) if integer else low, math.ceil(high) if integer else high,
                         integer=integer)
    if integer:
        return Dimension(name, max(1, math.floor(COUNT_RANGE[0] * default)), math.ceil(COUNT_RANGE[1] * default),
                         integer=True)
    if default < 1:
        return Dimension(name, default / 2, default + (1 - default) / 2)
    return Dimension(name, default / SCALE_FACTOR, default * SCALE_FACTOR, log=True)


def parse_dimension(text: str) -> Dimension:
    """``"lr=1e-4:1e-1:log"`` -> a :class:`Dimension` (``:int`` for whole numbers)."""
    name, sep, rest = text.partition("=")
    parts = rest.split(":") if sep else []
    flags = {p.strip().lower() for p in parts[2:]}
    if not name.strip().isidentifier() or len(parts) < 2 or not flags <= {"log", "int"}:
        raise ValueError(f"--space {text!r}: write it as NAME=LOW:HIGH, optionally followed by :log and/or :int "
                         "(e.g. lr=1e-4:1e-1:log, rounds=2:8:int)")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"--space {text!r}: LOW and HIGH must be numbers") from None
    return Dimension(name.strip(), low, high, log="log" in flags, integer="int" in flags)


@dataclass(frozen=True)
class EntryPoint:
    """What :func:`entry_point_defaults` read from a method's ``unlearning``."""

    defaults: dict        # option -> its default in the setting (resolved where the function declares its options)
    accepted: tuple       # every option it takes by name
    any_keyword: bool     # whether it takes ``**kwargs`` (any option)


def read_entry_point(method: Method, profile: SettingProfile) -> EntryPoint:
    """Load ``method``'s ``unlearning`` here and read its keyword parameters; a function declared with
    ``@unlearning_method`` (it carries ``published`` and ``tuned``) gives its defaults resolved in ``profile``'s
    setting. Runs the method's code: call it in a child process (:func:`entry_point_defaults`)."""
    function = load_function(method)
    if function is None:
        raise ValueError(f"{method.name} has no unlearning() function to tune (the kit baseline and checkpoint zips "
                         "take no options)")
    parameters = inspect.signature(function).parameters
    named = {p: v.default for p, v in parameters.items() if p not in POSITIONAL and p != PROFILE
             and v.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)}
    published = getattr(function, "published", None)
    if isinstance(published, dict):
        named.update(profile.defaults(published, getattr(function, "tuned", None)))
    any_keyword = any(v.kind is inspect.Parameter.VAR_KEYWORD for v in parameters.values())
    return EntryPoint(defaults={k: v for k, v in named.items() if v is not inspect.Parameter.empty},
                      accepted=tuple(named), any_keyword=any_keyword)


def entry_point_defaults(method: Method, profile: SettingProfile) -> EntryPoint:
    """:func:`read_entry_point` in a fresh child process (the method's code never runs in the driver)."""
    return entry_points([method], profile)[0]


def entry_points(methods: list[Method], profile: SettingProfile) -> list[EntryPoint]:
    """:func:`read_entry_point` of each of ``methods``, in one fresh child process."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(read_entry_point, methods, [profile] * len(methods)))


def derive_space(entry: EntryPoint, fixed: dict, profile: SettingProfile, time_budget: float,
                 overrides: tuple[Dimension, ...] = (), only: tuple[str, ...] = ()) -> tuple[Dimension, ...]:
    """The searched options: every tunable default of ``entry`` not in ``fixed`` (:func:`dimension_for`), each
    ``override`` replacing or adding its option's range, then only the names in ``only`` (if any). A name the
    function does not take, or a fixed one, is a ``ValueError`` saying which names it takes."""
    takes = set(entry.accepted)
    for name in [d.name for d in overrides] + list(only):
        if name in fixed:
            raise ValueError(f"{name} is fixed by an option given ({name}={fixed[name]!r}): drop one of the two")
        if name not in takes and not entry.any_keyword:
            raise ValueError(f"unlearning() takes no option {name!r}; it takes {sorted(takes) or 'no options'}")
    space = {name: dimension_for(name, default, profile, time_budget)
             for name, default in entry.defaults.items() if name not in fixed}
    space = {name: d for name, d in space.items() if d is not None}
    space.update({d.name: d for d in overrides})
    if only:
        missing = sorted(set(only) - set(space))
        if missing:
            raise ValueError(f"--only {missing}: no range for them (no numeric default); give one with --space")
        space = {name: space[name] for name in only}
    if not space:
        raise ValueError("nothing to tune: the method has no option with a numeric default left free; give a "
                         "range with --space NAME=LOW:HIGH")
    return tuple(space.values())


def start_point(entry: EntryPoint, space: tuple[Dimension, ...]) -> dict:
    """The defaults as a point of ``space`` (the study's first trial): each searched option's default, clipped to
    its range (an option added by ``--space`` without a numeric default starts at its range's middle)."""
    point = {}
    for d in space:
        default = entry.defaults.get(d.name)
        if not _is_number(default):
            default = math.sqrt(d.low * d.high) if d.log else (d.low + d.high) / 2
        point[d.name] = d.clip(default)
    return point
