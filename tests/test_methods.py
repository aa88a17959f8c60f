"""The reference methods (``methods/``): the registry, and for every registered method of ``methods/`` on
the digits data with the cached original: the challenge's contract, determinism under a seed (and the
same result from Kaggle dict batches), that it changes the model, and that it moves the forget
examples' confidence the way its design intends. Plus the contract on torchvision's resnet18."""

import copy
import importlib
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from unlearning_mock.methods.registry import METHODS, get_entry, load_method, method_names
from unlearning_mock.starter_kit.data import TensorPairs, make_loaders
from unlearning_mock.starter_kit.models import SmallResNet, resnet18
from unlearning_mock.starter_kit.settings import load_setting

pytestmark = pytest.mark.training

REFERENCE = [name for name, entry in METHODS.items() if entry.module.startswith("unlearning_mock.methods.")]

# What each method's design must do to the forget examples on digits at its defaults, asserted on the mean of
# SEEDS runs so that the last bits of a CPU's kernels (which move single trajectories) cannot flip it:
# * methods with an explicit objective on the forget set push forget examples away from retain ones: the
#   retain-minus-forget confidence gap grows by more than GAP_GROWTH;
# * methods that re-initialise or perturb weights and repair on retain data destroy what was memorised: the
#   forget examples' mean confidence falls by more than CONFIDENCE_DROP.
# MSG, SCRUB and the two retain fine-tunes claim neither here; what they (and every method) measure on digits
# is printed by benchmarks/bench_forgetting_direction.py, its figures in benchmarks/RESULTS.md.
PUSHES_FORGET_AWAY = {"fcs", "ga", "neggrad+", "random-labels", "salun", "bad-teacher"}
RESETS_WEIGHTS = {"cfw", "prmq", "ct", "kde", "rni", "team-forget"}
SEEDS = (0, 1, 2)
GAP_GROWTH, CONFIDENCE_DROP = 0.05, 1.0
_RUNS = {}


def confidence(net, inputs, targets):
    """The challenge's per-example confidence log p_y − log(1 − p_y), eval mode."""
    with torch.no_grad():
        log_p = torch.log_softmax(net(inputs), 1).gather(1, targets[:, None])[:, 0]
    return log_p - torch.log(-torch.expm1(log_p).clamp(max=-1e-12))


def run(name, original, digits, seed=0, dict_batches=False, **extra):
    """The method's run on digits as the evaluator makes it: the setting's profile passed, seeded."""
    unlearn, options = load_method(name)
    options = {**options, "profile": load_setting("digits").profile}
    net = copy.deepcopy(original)
    loaders = make_loaders(digits, seed=seed, dict_batches=dict_batches)
    torch.manual_seed(seed)
    returned = unlearn(net, loaders.retain, loaders.forget, loaders.validation, **{**options, **extra})
    return net, returned


def forget_gap(net, digits):
    """Mean confidence on retain minus on forget: how much less sure the model is of forget examples."""
    return (confidence(net, *digits.retain).mean() - confidence(net, *digits.forget).mean()).item()


# ---------------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------------


def test_registry_lists_every_required_method_with_its_rank():
    required = {"fcs": 2, "msg": 3, "cfw": 4, "prmq": 5, "ct": 6, "kde": 7, "rni": 8, "team-forget": 9,
                "ft-kaggle": 10}
    assert {name: METHODS[name].private_rank for name in required} == required
    for name in ("ft-kit", "ga", "neggrad+", "scrub", "random-labels", "salun", "bad-teacher",
                 "srfl-submitted", "srfl-seed", "alif-decouple", "alif-unseen"):
        assert name in METHODS
    assert method_names("kaggle") == ["fcs", "msg", "cfw", "prmq", "ct", "kde", "rni", "team-forget"]
    assert METHODS["srfl-seed"].options == {"variant": "seed"}
    for name in REFERENCE:
        assert importlib.import_module(get_entry(name).module).__doc__.strip(), f"{name} has no docstring"


def test_the_per_method_tests_below_see_every_reference_method():
    """Every file of methods/ that declares a method is among REFERENCE (a filter that matched nothing would
    skip every per-method test silently)."""
    folder = Path(importlib.import_module("unlearning_mock.methods").__file__).parent
    declaring = {f"unlearning_mock.methods.{path.stem}" for path in folder.glob("*.py")
                 if "@unlearning_method(" in path.read_text()}
    assert declaring and {get_entry(name).module for name in REFERENCE} == declaring
    assert {"fcs", "kde", "scrub", "bad-teacher"} <= set(REFERENCE)


def test_unknown_method_is_a_clear_error_listing_the_known_ones():
    with pytest.raises(ValueError, match="unknown method 'nope'.*fcs.*bad-teacher"):
        load_method("nope")


def test_unknown_option_is_a_clear_error_listing_the_method_options(original):
    unlearning, _ = load_method("fcs")
    with pytest.raises(ValueError, match=r"fcs: unknown option\(s\) \['epoch'\]; its options are .*rounds"):
        unlearning(original, [], [], None, epoch=3)


# ---------------------------------------------------------------------------------------------------
# Every reference method on digits
# ---------------------------------------------------------------------------------------------------


def unlearned_once(name, original, digits):
    """The method's seed-0 run (shared by the contract and the direction tests)."""
    if name not in _RUNS:
        _RUNS[name] = run(name, original, digits)
    return _RUNS[name]


@pytest.mark.parametrize("name", REFERENCE)
def test_method_contract_determinism_and_change(name, original, digits):
    before = {k: v.clone() for k, v in original.state_dict().items()}
    net, returned = unlearned_once(name, original, digits)
    # the contract: in place, returned, eval mode, same architecture and shapes, finite weights
    assert returned is net and not net.training
    assert type(net) is SmallResNet
    after = net.state_dict()
    assert after.keys() == before.keys()
    assert all(after[k].shape == before[k].shape for k in before)
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert all(p.requires_grad for p in net.parameters()), "parameters must be left trainable"
    changed = max((after[k].float() - before[k].float()).abs().max().item() for k in before)
    assert changed > 1e-4, f"{name} left the model (nearly) unchanged: largest change {changed:.2e}"
    # determinism: the same seeds give identical weights, from tuple and from Kaggle dict batches alike
    again, _ = run(name, original, digits, dict_batches=True)
    assert all(torch.equal(again.state_dict()[k], after[k]) for k in after), f"{name} is not deterministic"


def direction(net, original, digits) -> dict:
    """How far ``net`` moved the forget examples from where ``original`` had them: the growth of the retain-minus-
    forget confidence gap, and the fall of the forget examples' mean confidence."""
    forget = lambda model: confidence(model, *digits.forget).mean().item()
    return {"gap_growth": forget_gap(net, digits) - forget_gap(original, digits),
            "confidence_drop": forget(original) - forget(net)}


def claim_holds(name: str, moved: dict) -> bool:
    """The claim of ``name``'s design (see PUSHES_FORGET_AWAY / RESETS_WEIGHTS) on one seed-mean ``direction``."""
    if name in PUSHES_FORGET_AWAY:
        return moved["gap_growth"] > GAP_GROWTH
    return moved["confidence_drop"] > CONFIDENCE_DROP


def test_direction_claims_cover_methods_of_the_registry():
    assert PUSHES_FORGET_AWAY | RESETS_WEIGHTS <= set(REFERENCE) and not PUSHES_FORGET_AWAY & RESETS_WEIGHTS


@pytest.mark.parametrize("name", sorted(PUSHES_FORGET_AWAY | RESETS_WEIGHTS))
def test_method_moves_the_forget_examples_as_its_design_intends(name, original, digits):
    runs = [unlearned_once(name, original, digits)[0]] + [run(name, original, digits, seed=s)[0] for s in SEEDS[1:]]
    moved = [direction(net, original, digits) for net in runs]
    mean = {key: sum(m[key] for m in moved) / len(moved) for key in moved[0]}
    assert claim_holds(name, mean), (name, mean, moved)


def test_a_do_nothing_unlearning_fails_both_claims(original, digits):
    """The original handed back unchanged: no gap growth and no confidence drop, so neither claim holds."""
    untouched = direction(copy.deepcopy(original), original, digits)
    assert untouched == {"gap_growth": 0.0, "confidence_drop": 0.0}
    assert not claim_holds("ga", untouched) and not claim_holds("ct", untouched)


@pytest.mark.parametrize("name", REFERENCE)
def test_method_contract_on_resnet18_with_dict_batches(name):
    """The published (resnet18) defaults on a tiny Kaggle-like set: 3x32x32 images 0-255, dict batches."""
    torch.manual_seed(0)
    images = torch.rand(24, 3, 32, 32) * 255
    labels = torch.arange(24) % 10

    def loader(lo, hi, shuffle=True):
        return DataLoader(TensorPairs(images[lo:hi], labels[lo:hi], as_dict=True), batch_size=8, shuffle=shuffle,
                          generator=torch.Generator().manual_seed(lo))

    net = resnet18()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    unlearn, options = load_method(name)
    returned = unlearn(net, loader(0, 16), loader(16, 20), loader(20, 24, shuffle=False), **options)
    assert returned is net and not net.training
    after = net.state_dict()
    assert all(after[k].shape == before[k].shape for k in before)
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert any(not torch.equal(after[k], before[k]) for k in before)
