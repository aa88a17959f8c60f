"""The CIFAR-10 starting kit's setting, read from a local ``cifar-10-batches-py`` folder.

As in the organisers' kit (``unlearning-CIFAR10.ipynb``):

* the 50,000 training and 10,000 test images of CIFAR-10, read with torchvision's ``CIFAR10`` from
  ``DATA_DIR/cifar-10-batches-py/`` (the folder ``cifar-10-python.tar.gz`` unpacks to);
* ``ToTensor`` + ``Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))`` -- done here on
  the whole uint8 array at once, with the very same float32 operations, so the tensors are bitwise
  those of the kit's per-image transform;
* the test images split 50/50 into test and validation with
  ``test_set, val_set = random_split(held_out, [0.5, 0.5], generator=torch.Generator().manual_seed(42))``
  (the kit's generator is first used by this call); both halves keep the kit's order;
* the forget set: the kit's published ``forget_idx.npy`` (``forget_idx_path``), or 10% of the train
  set at random with a fixed seed; retain = the rest;
* torchvision's ``resnet18(weights=None, num_classes=10)``, batch size 128, the kit's fine-tuning
  baseline (5 epochs, lr 0.1), and optionally the kit's published ``weights_resnet18_cifar10.pth``.

Nothing is downloaded unless ``download=True`` (``--download``) is passed; without the files a
:class:`FileNotFoundError` says where to put them.

torchvision's ``CIFAR10`` checks the MD5 sums of the six files on every load, which rejects
anything but the official files. :class:`_CIFAR10Folder` keeps torchvision's reader (same pickle
parsing, same array layout) and only replaces that check by a presence check, so the small folders
written by :func:`write_fake_cifar10` for the tests go through the same code as the real data.
Whether the files are the official ones is reported separately (:func:`official_cifar10_files`).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torchvision

from unlearning_mock.starter_kit.baseline import cifar_kit_unlearning
from unlearning_mock.starter_kit.data import FORGET_FRACTION, UnlearningData, random_forget_indices
from unlearning_mock.starter_kit.models import resnet18
from unlearning_mock.starter_kit.setting import Setting, SettingFlag, register_setting
from unlearning_mock.starter_kit.training import Recipe

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(name for name, _ in torchvision.datasets.CIFAR10.train_list)
CIFAR10_TEST_FILES = tuple(name for name, _ in torchvision.datasets.CIFAR10.test_list)
CIFAR10_META_FILE = torchvision.datasets.CIFAR10.meta["filename"]
CIFAR10_FILES = CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES + (CIFAR10_META_FILE,)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
CIFAR10_BATCH_SIZE = 128
SPLIT_SEED = 42            # the kit's RNG = torch.Generator().manual_seed(42)
CIFAR10_FORGET_SEED = 1    # seed of the random 10% forget set when no index file is given
KIT_WEIGHTS_NAME = "weights_resnet18_cifar10.pth"

CIFAR10_RECIPE = Recipe(epochs=30, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9,
                        weight_decay=5e-4, schedule="cosine", augment="crop_flip")
"""The original model's (and every oracle's) recipe: the kit's stated SGD lr 0.1, momentum 0.9,
weight decay 5e-4 with RandomCrop(32, padding=4) + RandomHorizontalFlip, batch 128.

The kit does not publish its epochs or schedule; this project chooses **30 epochs with a cosine
schedule** (annealed per step to 0): enough for torchvision's ResNet-18 to fit the train set
(the kit's published model: 99.5% train, 88.3% test; this recipe's accuracy on the real data has not
been measured in this project) at a fraction of a long schedule's cost, since 512 oracles are
trained with it. ``--epochs`` scales it (the cosine schedule always spans the whole run).
Measured on one H100: about 6 s per 50,000-image epoch, so about 3 minutes per 30-epoch model."""


class _CIFAR10Folder(torchvision.datasets.CIFAR10):
    """torchvision's ``CIFAR10`` with a file-presence check in place of its MD5 check."""

    def _check_integrity(self) -> bool:
        folder = Path(self.root) / self.base_folder
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as infile:
            self.classes = pickle.load(infile, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


def missing_cifar10_files(data_dir) -> list[str]:
    """The names of the CIFAR-10 files absent from ``data_dir/cifar-10-batches-py/``."""
    folder = Path(data_dir) / CIFAR10_FOLDER
    return [name for name in CIFAR10_FILES if not (folder / name).is_file()]


def official_cifar10_files(data_dir) -> bool:
    """Whether the six files match torchvision's MD5 sums of the official CIFAR-10 (reads ~180 MB)."""
    from torchvision.datasets.utils import check_integrity

    dataset = torchvision.datasets.CIFAR10
    folder = Path(data_dir) / CIFAR10_FOLDER
    listed = dataset.train_list + dataset.test_list + [[dataset.meta["filename"], dataset.meta["md5"]]]
    return all(check_integrity(str(folder / name), md5) for name, md5 in listed)


def _missing_files_message(data_dir: Path, missing: list[str]) -> str:
    folder = data_dir / CIFAR10_FOLDER
    lines = [
        f"CIFAR-10 not found: {folder} lacks {', '.join(missing)}.",
        f"Put the CIFAR-10 python version there: download cifar-10-python.tar.gz from {CIFAR10_URL}",
        f"and unpack it into {data_dir} (`tar -xzf cifar-10-python.tar.gz -C {data_dir}`), which creates",
        f"{folder}/ with {', '.join(CIFAR10_FILES)};",
        "or rerun with --download to let torchvision fetch it (about 170 MB).",
    ]
    if (data_dir / CIFAR10_TRAIN_FILES[0]).is_file():
        lines.append(f"Hint: {data_dir} itself holds the batch files; pass its parent folder "
                     f"{data_dir.parent} as --data-dir.")
    if (data_dir / torchvision.datasets.CIFAR10.filename).is_file():
        lines.append(f"Hint: {data_dir / torchvision.datasets.CIFAR10.filename} is there but not "
                     "unpacked; unpack it, or pass --download (it is then unpacked, not downloaded).")
    return "\n".join(lines)


def _read_split(data_dir: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [n, 32, 32, 3], labels int64 [n])`` of one split, read by torchvision."""
    try:
        dataset = _CIFAR10Folder(root=str(data_dir), train=train, download=download)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"the CIFAR-10 files in {data_dir / CIFAR10_FOLDER} are not in the CIFAR-10 "
                         f"python format ({type(error).__name__}: {error})") from error
    images, labels = np.asarray(dataset.data), np.asarray(dataset.targets, dtype=np.int64)
    if images.dtype != np.uint8 or images.shape[1:] != (32, 32, 3) or len(images) != len(labels):
        raise ValueError(f"the CIFAR-10 {'train' if train else 'test'} files in {data_dir / CIFAR10_FOLDER} "
                         f"hold {images.shape} {images.dtype} images and {len(labels)} labels; expected "
                         "uint8 rows of 3072 values and one label per row")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise ValueError(f"the CIFAR-10 labels in {data_dir / CIFAR10_FOLDER} must lie in [0, 10); "
                         f"got values in [{labels.min()}, {labels.max()}]")
    return images, labels


def normalize_images(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[n, 32, 32, 3]`` -> float32 ``[n, 3, 32, 32]``, as ``ToTensor`` then ``Normalize``.

    The same float32 operations in the same order as torchvision's per-image transforms
    (``x.float().div(255)``, then ``sub_(mean).div_(std)``), vectorised: bitwise equal results.
    """
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
    x = x.to(torch.float32).div_(255)
    mean = torch.tensor(CIFAR10_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


def kit_test_validation_split(num_test: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The kit's ``test_set, val_set = random_split(held_out, [0.5, 0.5], generator=...(seed))`` indices."""
    test_part, val_part = torch.utils.data.random_split(
        range(num_test), [0.5, 0.5], generator=torch.Generator().manual_seed(seed))
    return np.asarray(test_part.indices, dtype=np.int64), np.asarray(val_part.indices, dtype=np.int64)


def load_forget_indices(path, num_train: int) -> np.ndarray:
    """Read and check a forget-index file (the kit's ``forget_idx.npy``): unique integers in range."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"forget-index file {path} not found (the kit's is forget_idx.npy, "
                                "a NumPy array of train indices)")
    try:
        idx = np.load(path, allow_pickle=False)
    except Exception as error:  # not a .npy file, or a pickled object array
        raise ValueError(f"forget-index file {path} is not a NumPy .npy array of integers "
                         f"({type(error).__name__}: {error})") from error
    if idx.dtype.kind not in "iu":
        raise ValueError(f"forget-index file {path} must hold integers; got dtype {idx.dtype}")
    if idx.ndim != 1:
        raise ValueError(f"forget-index file {path} must be a 1-D array; got shape {idx.shape}")
    if idx.size == 0:
        raise ValueError(f"forget-index file {path} is empty")
    idx = idx.astype(np.int64)
    if idx.min() < 0 or idx.max() >= num_train:
        raise ValueError(f"forget-index file {path}: indices must lie in [0, {num_train}) (the train set's "
                         f"size); got values in [{idx.min()}, {idx.max()}]")
    values, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"forget-index file {path} repeats {int((counts > 1).sum())} index/indices, "
                         f"e.g. {values[counts > 1][:5].tolist()}")
    return idx


def load_cifar10_data(data_dir, download: bool = False, forget_idx_path=None,
                      forget_seed: int = CIFAR10_FORGET_SEED) -> UnlearningData:
    """CIFAR-10 from ``data_dir/cifar-10-batches-py/`` as the kit splits it, all in memory (~700 MB)."""
    if data_dir is None:
        raise ValueError("--dataset cifar10 needs --data-dir: the folder that holds (or, with "
                         f"--download, will hold) {CIFAR10_FOLDER}/")
    data_dir = Path(data_dir).expanduser()
    missing = missing_cifar10_files(data_dir)
    if missing and not download:
        raise FileNotFoundError(_missing_files_message(data_dir, missing))
    if missing:
        data_dir.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = _read_split(data_dir, train=True, download=download)
    test_images, test_labels = _read_split(data_dir, train=False, download=False)
    if forget_idx_path is not None:
        forget_idx = load_forget_indices(forget_idx_path, len(train_labels))
    else:
        forget_idx = random_forget_indices(len(train_labels), FORGET_FRACTION, forget_seed)
    test_idx, val_idx = kit_test_validation_split(len(test_labels))
    held_out = normalize_images(test_images)
    held_out_targets = torch.from_numpy(test_labels)
    return UnlearningData(
        name="cifar10",
        train_inputs=normalize_images(train_images), train_targets=torch.from_numpy(train_labels),
        val_inputs=held_out[val_idx], val_targets=held_out_targets[val_idx],
        test_inputs=held_out[test_idx], test_targets=held_out_targets[test_idx],
        forget_idx=forget_idx,
        num_classes=len(CIFAR10_CLASSES),
    )


def check_original_weights(path) -> Path:
    """Check that ``path`` is a state dict that loads into ``resnet18(num_classes=10)``; return it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"original weights {path} not found (the kit's file is {KIT_WEIGHTS_NAME})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"original weights {path} are not a readable PyTorch state dict "
                         f"({type(error).__name__}: {error})") from error
    if not isinstance(state, dict):
        raise ValueError(f"original weights {path} hold a {type(state).__name__}, not a state dict")
    try:
        resnet18(len(CIFAR10_CLASSES)).load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"original weights {path} do not fit torchvision's resnet18(num_classes=10): "
                         f"{error}") from error
    return path


@register_setting("cifar10", flags={
    "epochs": SettingFlag("epochs of the training recipe", int),
    "download": SettingFlag("download the data into --data-dir if missing", None),
    "forget_idx": SettingFlag("the kit's forget_idx.npy"),
    "original_weights": SettingFlag("the kit's published original weights (.pth)")})
def cifar10_setting(data_dir, download: bool = False, forget_idx=None, epochs: int | None = None,
                    original_weights=None, forget_seed: int = CIFAR10_FORGET_SEED, **ignored) -> Setting:
    """The CIFAR-10 starting kit's setting (``--dataset cifar10``).

    ``forget_idx``: path of the kit's ``forget_idx.npy`` (else a random 10%, ``forget_seed``);
    ``epochs``: overrides the recipe's 30 epochs; ``original_weights``: the kit's
    ``weights_resnet18_cifar10.pth``, used as the original model instead of training one.
    Options meant for other settings (``**ignored``) are accepted and ignored.
    """
    recipe = CIFAR10_RECIPE
    if epochs is not None:
        recipe = Recipe(**{**recipe.as_dict(), "epochs": int(epochs)})
    weights = check_original_weights(original_weights) if original_weights is not None else None
    data = load_cifar10_data(data_dir, download=download, forget_idx_path=forget_idx, forget_seed=forget_seed)
    return Setting(
        name="cifar10", data=data, make_model=resnet18, recipe=recipe,
        batch_size=CIFAR10_BATCH_SIZE, dict_batches=False,
        baseline=cifar_kit_unlearning, baseline_name="CIFAR-10 kit fine-tune (5 epochs, lr 0.1)",
        original_weights=weights,
        notes={"forget_set": str(forget_idx) if forget_idx is not None
               else f"random {FORGET_FRACTION:.0%} of train (seed {forget_seed})",
               "split": f"kit's random_split of the test images, seed {SPLIT_SEED} (test, validation)",
               "recipe_epochs": recipe.epochs,
               "files": "official CIFAR-10 (MD5 verified)" if official_cifar10_files(Path(data_dir).expanduser())
               else "not the official CIFAR-10 files (MD5 sums differ)"},
    )


# --- a small folder in the real CIFAR-10 format, for tests and benchmarks -------------------------

def fake_cifar10_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Class-dependent uint8 images ``[n, 32, 32, 3]``: a class colour, a class stripe pattern, noise."""
    n = len(labels)
    colours = np.random.default_rng(12345).uniform(40, 215, (10, 3))           # one colour per class
    yy, xx = np.mgrid[0:32, 0:32]
    angles = np.arange(10) * np.pi / 10                                         # one stripe direction
    stripes = np.stack([np.sin((np.cos(a) * xx + np.sin(a) * yy) * 0.8) for a in angles])  # [10, 32, 32]
    images = colours[labels][:, None, None, :] + 35.0 * stripes[labels][..., None]
    images += rng.normal(0.0, 25.0, (n, 32, 32, 3))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def _write_batch(path: Path, images: np.ndarray, labels: np.ndarray, batch_label: str, first: int) -> None:
    # The official pickles come from Python 2; read in Python 3 with encoding="latin1" (as torchvision
    # does) their keys are str and "data" a uint8 [n, 3072] array (channel planes R, G, B, row-major).
    entry = {
        "batch_label": batch_label,
        "labels": [int(label) for label in labels],
        "data": np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), 3072),
        "filenames": [f"fake_{first + i:05d}.png" for i in range(len(images))],
    }
    with open(path, "wb") as handle:
        pickle.dump(entry, handle, protocol=2)


def write_fake_cifar10(root, n_train: int = 300, n_test: int = 100, seed: int = 0) -> Path:
    """Write ``root/cifar-10-batches-py/`` in the real CIFAR-10 python format, with generated images.

    ``n_train`` images spread over ``data_batch_1..5``, ``n_test`` in ``test_batch``, plus
    ``batches.meta``; labels are balanced over the 10 classes and shuffled. Returns ``root``.
    """
    if n_train < len(CIFAR10_TRAIN_FILES) or n_test < 2:
        raise ValueError(f"need n_train >= {len(CIFAR10_TRAIN_FILES)} and n_test >= 2")
    root = Path(root)
    folder = root / CIFAR10_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_labels = rng.permutation(np.arange(n_train) % 10)
    test_labels = rng.permutation(np.arange(n_test) % 10)
    train_images = fake_cifar10_images(train_labels, rng)
    test_images = fake_cifar10_images(test_labels, rng)
    parts = np.array_split(np.arange(n_train), len(CIFAR10_TRAIN_FILES))
    for number, (name, part) in enumerate(zip(CIFAR10_TRAIN_FILES, parts), start=1):
        _write_batch(folder / name, train_images[part], train_labels[part],
                     f"training batch {number} of {len(CIFAR10_TRAIN_FILES)}", int(part[0]))
    _write_batch(folder / CIFAR10_TEST_FILES[0], test_images, test_labels, "testing batch 1 of 1", 0)
    meta = {"num_cases_per_batch": len(parts[0]), "label_names": list(CIFAR10_CLASSES), "num_vis": 3072}
    with open(folder / CIFAR10_META_FILE, "wb") as handle:
        pickle.dump(meta, handle, protocol=2)
    return root


__all__ = [
    "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR10_RECIPE", "CIFAR10_FILES", "CIFAR10_CLASSES",
    "load_cifar10_data", "cifar10_setting", "write_fake_cifar10", "kit_test_validation_split",
    "load_forget_indices", "normalize_images", "official_cifar10_files", "missing_cifar10_files",
    "check_original_weights",
]
