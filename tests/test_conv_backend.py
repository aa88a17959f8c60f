"""The convolution backend per kind of work: chosen by measurement (the faster wins), cached, forced by
``--conv-backend``, part of the cache keys, set before every job -- so what a submission's call changes does not
reach the next call."""

import dataclasses
import json

import pytest
import torch

from unlearning_mock.mock_evaluator.cli import _config, _parser
from unlearning_mock.mock_evaluator.engine import jobs as J
from unlearning_mock.mock_evaluator.engine.local import InlineExecutor
from unlearning_mock.mock_evaluator.evaluate import EvalConfig, Evaluation
from unlearning_mock.mock_evaluator.method import method_from_spec
from unlearning_mock.starter_kit import conv_backend as cb
from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.original import original_cache_path
from unlearning_mock.starter_kit.settings import load_setting
from unlearning_mock.starter_kit.training import DIGITS_RECIPE


def _measure(seconds: dict):
    """An injected ``measure(kind, backend)``: the given seconds per step, each call logged."""
    calls = []

    def measure(kind, backend):
        calls.append((kind, backend))
        return seconds[kind, backend]
    return measure, calls


def test_each_kind_gets_its_faster_backend_measured_interleaved():
    measure, calls = _measure({("one_model", "onednn"): 3.1e-3, ("one_model", "native"): 1.5e-3,
                               ("fused", "onednn"): 0.025, ("fused", "native"): 0.041,
                               ("figures", "onednn"): 0.07, ("figures", "native"): 0.16})
    chosen, medians = cb.choose(measure, rounds=3)
    assert chosen == cb.ConvBackends(one_model="native", fused="onednn", figures="onednn")
    assert medians["one_model"] == {"onednn": 3.1e-3, "native": 1.5e-3}
    assert calls[:4] == [("one_model", "onednn"), ("one_model", "native")] * 2      # A B A B: load hits both
    assert len(calls) == 3 * 2 * 3


def test_the_median_decides_and_a_tie_keeps_torchs_default():
    times = iter([9.0, 1.0, 1.0, 2.0, 1.0, 2.0,            # one_model: onednn 9, 1, 1 (median 1) vs native 1, 2, 2
                  1.0, 1.0, 1.0, 1.0, 1.0, 1.0,            # fused: a tie
                  3.0, 1.0, 3.0, 1.0, 3.0, 1.0])           # figures: native
    chosen, medians = cb.choose(lambda kind, backend: next(times), rounds=3)
    assert medians["one_model"] == {"onednn": 1.0, "native": 2.0}
    assert chosen == cb.ConvBackends(one_model="onednn", fused="onednn", figures="native")


def test_real_timings_on_the_digits_model_are_measured_once_and_cached(tmp_path, monkeypatch):
    setting = load_setting("digits")
    measure = cb.setting_measure(setting, groups=2, seconds=0.01)
    assert all(measure(kind, backend) > 0 for kind in cb.KINDS for backend in cb.BACKENDS)
    assert cb.current() == "onednn"                                      # measuring leaves the process as it was
    backends, record = cb.measured_backends(setting, 2, "cpu", tmp_path, log=lambda *_: None)
    assert set(record["ms_per_step"]) == set(cb.KINDS) and record["fused_models"] == 2
    for kind in cb.KINDS:   # the faster of the two medians
        row = record["ms_per_step"][kind]
        assert getattr(backends, kind) == min(cb.BACKENDS, key=lambda b: (row[b], b != "onednn"))
    monkeypatch.setattr(cb, "choose", lambda *a, **k: pytest.fail("measured again"))
    assert cb.measured_backends(setting, 2, "cpu", tmp_path)[0] == backends               # from the cache
    assert json.loads(next((tmp_path / "conv-backend").glob("digits-*.json")).read_text())["backends"] == {
        kind: getattr(backends, kind) for kind in cb.KINDS}
    assert cb.measured_backends(setting, 2, "cuda", tmp_path)[0] == cb.ConvBackends()     # not a CPU: not measured


def test_conv_backend_option_forces_both_kinds_without_measuring(monkeypatch):
    monkeypatch.setattr(cb, "choose", lambda *a, **k: pytest.fail("measured although forced"))
    args = _parser("evaluate").parse_args(["--conv-backend", "native"])
    assert _config(args, submissions=()).conv_backend == "native"
    monkeypatch.delenv(cb.ENV_VAR, raising=False)
    assert _parser("evaluate").parse_args([]).conv_backend == "auto" == EvalConfig().conv_backend
    backends, record = cb.resolve_backends("native", None, 128, "cpu", "/nowhere")
    assert backends == cb.ConvBackends("native", "native", "native") and record["chosen_by"] == "--conv-backend native"
    with pytest.raises(ValueError, match="--conv-backend must be one of"):
        EvalConfig(conv_backend="mkl")


def test_the_environment_sets_the_default_backend(monkeypatch):
    monkeypatch.setenv(cb.ENV_VAR, "onednn")
    assert _parser("evaluate").parse_args([]).conv_backend == "onednn" == EvalConfig().conv_backend
    assert _parser("evaluate").parse_args(["--conv-backend", "native"]).conv_backend == "native"   # the flag wins
    monkeypatch.setenv(cb.ENV_VAR, "fast")
    with pytest.raises(ValueError, match="UNLEARNING_CONV_BACKEND must be one of auto, onednn, native"):
        EvalConfig()


def test_the_backend_is_in_the_cache_keys(cache_dir, original):
    evaluation = Evaluation(EvalConfig(dataset="digits", num_models=4, cache_dir=str(cache_dir), progress=False,
                                       conv_backend="onednn", baseline=False, submissions=()), log=lambda *_: None)
    try:
        assert evaluation.context.backends == cb.ConvBackends.every("onednn")
        baseline = method_from_spec("baseline", name="baseline", baseline_function=evaluation.setting.baseline)
        srfl = method_from_spec("submission/unlearning.py")
        folders = {"oracles": evaluation.oracle_folder(), "baseline": evaluation.runs_folder(baseline),
                   "srfl": evaluation.runs_folder(srfl)}
        for kind in cb.KINDS:
            evaluation.backends = dataclasses.replace(cb.ConvBackends.every("onednn"), **{kind: "native"})
            assert (evaluation.oracle_folder() != folders["oracles"]) == (kind == "fused")
            assert evaluation.runs_folder(srfl) != folders["srfl"] or kind == "fused"
            assert evaluation.runs_folder(baseline) != folders["baseline"]    # fused, its timed calls one-model
    finally:
        evaluation.close()
    paths = {b: original_cache_path(evaluation.setting.data, SmallResNet, DIGITS_RECIPE, 0, cache_dir, b)
             for b in cb.BACKENDS}
    assert paths["onednn"] != paths["native"] and paths["onednn"].exists()   # the original is one-model work too


FLIPPER = '''
import torch


def unlearning(net, retain_loader, forget_loader, validation_loader, log=None):
    with open(log, "a") as handle:
        handle.write(f"{int(torch.backends.mkldnn.enabled)}\\n")
    torch.backends.mkldnn.enabled = not torch.backends.mkldnn.enabled   # a submission changing it for itself
    return net
'''


@pytest.mark.parametrize("one_model", cb.BACKENDS)
def test_every_call_starts_with_the_chosen_backend_whatever_the_last_call_did(tmp_path, cache_dir, original,
                                                                               one_model):
    """In one process (``--executor inline``, where nothing isolates the calls): each call sees the backend the
    driver chose for one-model work, and the driver's own is what it was."""
    path = tmp_path / "flipper.py"
    path.write_text(FLIPPER)
    log = tmp_path / "seen.txt"
    method = method_from_spec(str(path), {"log": str(log)})
    origin = original_cache_path(load_setting("digits").data, SmallResNet, DIGITS_RECIPE, 0, cache_dir, "onednn")
    context = J.Context("digits", None, (), str(origin), "cpu", cb.ConvBackends(one_model=one_model))
    jobs = [J.UnlearningJob(context, method, i, (i,)) for i in range(3)]
    with cb.using("onednn"):
        results = [result for _, result in InlineExecutor().map_unordered(jobs)]
        assert cb.current() == "onednn"
    assert all(result.error is None for result in results)
    assert log.read_text().split() == [str(int(one_model == "onednn"))] * 3
    assert torch.backends.mkldnn.enabled
