"""The original model: trained once on the whole train set with the recipe, cached, reloaded afterwards.

The cached file carries a SHA-256 beside it (``<file>.sha256``), like every other cached file: a truncated
or corrupt original is detected and retrained, never trusted."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from unlearning_mock.starter_kit.data import UnlearningData
from unlearning_mock.starter_kit.training import Recipe, cache_hash, model_key, train_models

CACHE_ENV = "UNLEARNING_CACHE_DIR"
CACHE_FOLDER_NAME = "unlearning-mock"


def default_cache_dir() -> Path:
    """Where cached models and runs go: ``$UNLEARNING_CACHE_DIR``, else the user's cache folder
    (``$XDG_CACHE_HOME/unlearning-mock``, by default ``~/.cache/unlearning-mock``) -- never the current folder,
    so the tool runs the same from any folder and two projects share one set of oracles."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / CACHE_FOLDER_NAME


ORIGINAL_SEED = 0


def original_cache_path(data: UnlearningData, make_model, recipe: Recipe, seed: int, cache_dir) -> Path:
    key = cache_hash("original", data.fingerprint(), model_key(make_model()), recipe.as_dict(), seed,
                     torch.__version__.split("+")[0])
    return Path(cache_dir) / "original" / f"{data.name}-{key}.pth"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".sha256")


def _write_atomically(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        write(handle)
        temp = handle.name
    os.replace(temp, path)


def save_state_atomically(state: dict, path: Path) -> None:
    """Write a state dict so that a reader sees either the old file or the complete new one."""
    _write_atomically(Path(path), lambda handle: torch.save(state, handle))


def save_checked_state(state: dict, path: Path) -> None:
    """:func:`save_state_atomically`, then its checksum beside it (a file without one is not trusted)."""
    save_state_atomically(state, path)
    digest = file_sha256(path)
    _write_atomically(checksum_path(path), lambda handle: handle.write(digest.encode()))


def checked(path: Path) -> bool:
    """Whether ``path`` and its checksum file exist and agree."""
    sidecar = checksum_path(path)
    return path.is_file() and sidecar.is_file() and sidecar.read_text().strip() == file_sha256(path)


def load_or_train_original(data: UnlearningData, make_model, recipe: Recipe, seed: int = ORIGINAL_SEED,
                           cache_dir=None, device="cpu", log=print) -> nn.Module:
    """The original model for ``data``: loaded from the cache if present and intact, else trained and cached
    (``cache_dir`` None: :func:`default_cache_dir`)."""
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    path = original_cache_path(data, make_model, recipe, seed, cache_dir)
    model = make_model()
    if path.exists():
        try:
            if not checked(path):
                raise ValueError("it fails its checksum")
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.to(device).eval()
        except Exception as error:  # a truncated, corrupt or foreign file: retrain, never trust it
            log(f"cached original model {path} is unreadable ({error}); retraining it")
    log(f"training the original model on {len(data.train_targets)} {data.name} images ({recipe}) ...")
    validation = data.validation if recipe.best_validation_from is not None else None
    (model,) = train_models(make_model, data.train_inputs, data.train_targets, recipe, [seed], device,
                            validation=validation)
    save_checked_state({k: v.cpu() for k, v in model.state_dict().items()}, path)
    log(f"original model cached at {path}")
    return model


def setting_original(setting, cache_dir=None, device="cpu", log=print) -> nn.Module:
    """The original model of a :class:`~starter_kit.setting.Setting`, in eval mode on ``device``: its published
    weights where it has them, else trained with its original's recipe (cached, :func:`load_or_train_original`)."""
    if setting.original_weights is not None:
        model = setting.make_model()
        model.load_state_dict(torch.load(setting.original_weights, map_location="cpu", weights_only=True))
        return model.to(device).eval()
    return load_or_train_original(setting.data, setting.make_model, setting.recipe_of_original, cache_dir=cache_dir,
                                  device=device, log=log)
