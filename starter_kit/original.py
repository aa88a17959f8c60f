"""The original model: trained once on the whole train set with the recipe, cached, reloaded afterwards.

The cached file carries a SHA-256 beside it (``<file>.sha256``), like every other cached file: a truncated
or corrupt original is detected and retrained, never trusted."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from unlearning_mock.starter_kit import conv_backend
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


def original_cache_path(data: UnlearningData, make_model, recipe: Recipe, seed: int, cache_dir,
                        backend: str | None = None) -> Path:
    """Where the original trained with these inputs and the convolution ``backend`` (None: the one this process
    uses now, :func:`starter_kit.conv_backend.current`) is cached."""
    key = cache_hash("original", data.fingerprint(), model_key(make_model()), recipe.as_dict(), seed,
                     torch.__version__.split("+")[0], backend or conv_backend.current())
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


def save_checked_state(state: dict, path: Path) -> str:
    """:func:`save_state_atomically`, then its checksum beside it (a file without one is not trusted).
    Returns the checksum (hex)."""
    save_state_atomically(state, path)
    digest = file_sha256(path)
    _write_atomically(checksum_path(path), lambda handle: handle.write(digest.encode()))
    return digest


def checked_sha256(path: Path) -> str | None:
    """The SHA-256 of ``path`` if the file and its checksum file exist and agree, else None."""
    sidecar = checksum_path(path)
    if not (path.is_file() and sidecar.is_file()):
        return None
    digest = file_sha256(path)
    return digest if sidecar.read_text().strip() == digest else None


def checked(path: Path) -> bool:
    """Whether ``path`` and its checksum file exist and agree."""
    return checked_sha256(path) is not None


@dataclass(frozen=True)
class OriginalModel:
    """The original model (eval mode), the file its weights were read from or written to, and that file's SHA-256
    (hex): an evaluation keys its cached results by it and hands the path to its workers."""
    model: nn.Module
    path: Path
    sha256: str


def cached_original(data: UnlearningData, make_model, recipe: Recipe, seed: int = ORIGINAL_SEED,
                    cache_dir=None, device="cpu", log=print) -> OriginalModel:
    """The original model for ``data``: loaded from the cache if present and intact, else trained (with the
    convolution backend this process uses now, part of the key) and cached (``cache_dir`` None:
    :func:`default_cache_dir`). The file is hashed once either way."""
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    path = original_cache_path(data, make_model, recipe, seed, cache_dir)
    model = make_model()
    if path.exists():
        try:
            digest = checked_sha256(path)
            if digest is None:
                raise ValueError("it fails its checksum")
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return OriginalModel(model.to(device).eval(), path, digest)
        except Exception as error:  # a truncated, corrupt or foreign file: retrain, never trust it
            log(f"cached original model {path} is unreadable ({error}); retraining it")
    log(f"training the original model on {len(data.train_targets)} {data.name} images ({recipe}) ...")
    validation = data.validation if recipe.best_validation_from is not None else None
    (model,) = train_models(make_model, data.train_inputs, data.train_targets, recipe, [seed], device,
                            validation=validation)
    digest = save_checked_state({k: v.cpu() for k, v in model.state_dict().items()}, path)
    log(f"original model cached at {path}")
    return OriginalModel(model.eval(), path, digest)


def load_or_train_original(data: UnlearningData, make_model, recipe: Recipe, seed: int = ORIGINAL_SEED,
                           cache_dir=None, device="cpu", log=print) -> nn.Module:
    """:func:`cached_original`'s model alone."""
    return cached_original(data, make_model, recipe, seed, cache_dir, device, log).model


def setting_original(setting, cache_dir=None, device="cpu", log=print) -> OriginalModel:
    """The original model of a :class:`~starter_kit.setting.Setting`, in eval mode on ``device``: its published
    weights where it has them (the file read once: hashed and loaded from the same bytes), else trained with its
    original's recipe (cached, :func:`cached_original`)."""
    if setting.original_weights is None:
        return cached_original(setting.data, setting.make_model, setting.recipe_of_original, cache_dir=cache_dir,
                               device=device, log=log)
    path = Path(setting.original_weights)
    content = path.read_bytes()
    model = setting.make_model()
    model.load_state_dict(torch.load(io.BytesIO(content), map_location="cpu", weights_only=True))
    return OriginalModel(model.to(device).eval(), path, hashlib.sha256(content).hexdigest())
