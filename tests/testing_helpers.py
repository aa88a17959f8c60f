"""Helpers that several test modules share (fixtures are in ``conftest.py``); importable as ``testing_helpers``
because pytest puts this folder on ``sys.path``."""

import textwrap
from pathlib import Path

from unlearning_mock.mock_evaluator.evaluate import EvalConfig, Evaluation


def write(path: Path, text: str) -> str:
    """``text``, dedented, as the file ``path`` (its folders made); the path as a string."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return str(path)


def evaluation_on(engine, cache_dir, num_models: int, **settings) -> Evaluation:
    """A quiet digits evaluation of ``num_models`` models on ``engine`` (an executor; None: the one that
    ``settings`` name) with no methods of its own (the tests hand it theirs) and no kit baseline; ``settings``:
    more :class:`EvalConfig` fields (limits, ``executor``)."""
    config = EvalConfig(dataset="digits", num_models=num_models, cache_dir=str(cache_dir), baseline=False,
                        submissions=(), progress=False, **settings)
    return Evaluation(config, executor=engine, log=lambda *_: None)
