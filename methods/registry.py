"""Every unlearning method the project can score side by side: the challenge's known methods
(``methods/``), the kit baselines and the project's own (``submission/``).

``METHODS`` maps a short id to a :class:`MethodEntry` (module, keyword options, private leaderboard
rank and score where known -- the sample fine-tune's is the organisers' baseline, 0.0584 --, family, one-line
description). :func:`load_method` imports the module and returns
``(unlearning, options)``; call it as ``unlearning(net, retain, forget, validation, **options)``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

FAMILIES = ("kaggle", "classic", "ours", "baseline")


@dataclass(frozen=True)
class MethodEntry:
    name: str
    module: str
    description: str
    family: str
    options: dict = field(default_factory=dict)
    private_rank: int | None = None   # NeurIPS 2023 Kaggle private leaderboard; the sample fine-tune = 10
    private_score: float | None = None   # its score on the hidden data, where published (shared/REFERENCE_METHODS.md)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family must be one of {FAMILIES}, got {self.family!r}")


_ENTRIES = [
    MethodEntry("fcs", "unlearning_mock.methods.fcs", "fanchuan: uniform-KL pass, then rounds of forget-logit contrast + retain CE",
                "kaggle", private_rank=2),
    MethodEntry("msg", "unlearning_mock.methods.msg", "Kookmin: re-init 30% of conv weights by gradient saliency, slowed fine-tune",
                "kaggle", private_rank=3),
    MethodEntry("cfw", "unlearning_mock.methods.cfw", "Seif: conv weights ~ N(w, 0.6²), class-weighted retain fine-tune",
                "kaggle", private_rank=4, private_score=0.0885),
    MethodEntry("prmq", "unlearning_mock.methods.prmq", "Oleszko: prune 99% by magnitude, re-init, CE + entropy-matching fine-tune",
                "kaggle", private_rank=5, private_score=0.0863),
    MethodEntry("ct", "unlearning_mock.methods.ct", "toshi_k & marvelworld: A (kernel-axis swap + fine-tune) / B (pseudo-labels) "
                "ensemble", "kaggle", private_rank=6, private_score=0.0785),
    MethodEntry("kde", "unlearning_mock.methods.kde", "Amnesiacs: reset conv1+fc, distil on validation, then CE + KD on retain",
                "kaggle", private_rank=7, private_score=0.0783),
    MethodEntry("rni", "unlearning_mock.methods.rni", "Jiaxi Sun: reset fc, partial training of random tensors with noise, then all",
                "kaggle", private_rank=8),
    MethodEntry("team-forget", "unlearning_mock.methods.team_forget", "Team Forget: cycles of re-init 6 layers + logit MSE to the "
                "original on noisy retain", "kaggle", private_rank=9),
    MethodEntry("ft-kaggle", "unlearning_mock.methods.ft_kaggle", "the Kaggle sample: retain fine-tune, 1 epoch, lr 1e-3",
                "baseline", private_rank=10, private_score=0.0584),
    MethodEntry("ft-kit", "unlearning_mock.methods.ft_kit", "the CIFAR-10 kit: retain fine-tune, 5 epochs, lr 0.1", "baseline"),
    MethodEntry("ga", "unlearning_mock.methods.ga", "gradient ascent on the forget set", "classic"),
    MethodEntry("neggrad+", "unlearning_mock.methods.neggrad_plus", "0.99·CE(retain) − 0.01·CE(forget)", "classic"),
    MethodEntry("scrub", "unlearning_mock.methods.scrub", "SCRUB: max-steps away from the teacher on forget, min-steps on retain",
                "classic"),
    MethodEntry("random-labels", "unlearning_mock.methods.random_labels", "retain CE + forget CE with random labels", "classic"),
    MethodEntry("salun", "unlearning_mock.methods.salun", "random labels with updates masked to the 50% most forget-salient weights",
                "classic"),
    MethodEntry("bad-teacher", "unlearning_mock.methods.bad_teacher", "distil the original on retain, a random network on forget",
                "classic"),
    MethodEntry("srfl-submitted", "unlearning_mock.submission.unlearning", "SRFL as its author submitted it", "ours",
                options={"variant": "submitted"}),
    MethodEntry("srfl-seed", "unlearning_mock.submission.unlearning", "SRFL as the seed README describes it", "ours",
                options={"variant": "seed"}),
    MethodEntry("alif-decouple", "unlearning_mock.submission.alif", "ALIF aimed at decoupling forget from retain", "ours",
                options={"target": "decouple"}),
    MethodEntry("alif-unseen", "unlearning_mock.submission.alif", "ALIF aimed at treating forget examples as unseen", "ours",
                options={"target": "unseen"}),
]

METHODS: dict[str, MethodEntry] = {entry.name: entry for entry in _ENTRIES}


def method_names(family: str | None = None) -> list[str]:
    """Registered ids (of one ``family``, or all), in registry order."""
    return [name for name, entry in METHODS.items() if family is None or entry.family == family]


def get_entry(name: str) -> MethodEntry:
    """The registry entry of ``name``; an unknown name is a ``ValueError`` listing the known ones."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    return METHODS[name]


def load_method(name: str):
    """``(unlearning, options)`` of the registered method ``name``: import its module, take its
    ``unlearning`` and the entry's keyword options (a copy)."""
    entry = get_entry(name)
    module = importlib.import_module(entry.module)
    function = getattr(module, "unlearning", None)
    if not callable(function):
        raise ValueError(f"method {name!r}: module {entry.module} defines no unlearning() function")
    return function, dict(entry.options)
