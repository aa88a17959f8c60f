"""The CIFAR-10 starting-kit setting, on small generated folders in the real CIFAR-10 pickle format.

No mocked loaders and no network: every test reads files written by ``write_fake_cifar10`` through
the same torchvision reader that reads the real CIFAR-10.
"""

import pickle
import shutil
import socket

import numpy as np
import pytest
import torch
import torchvision
from torchvision import transforms

from unlearning_mock.starter_kit import cifar10
from unlearning_mock.starter_kit.baseline import cifar_kit_unlearning
from unlearning_mock.starter_kit.cifar10 import (
    CIFAR10_FILES,
    CIFAR10_MEAN,
    CIFAR10_RECIPE,
    CIFAR10_STD,
    cifar10_setting,
    load_cifar10_data,
    write_fake_cifar10,
)
from unlearning_mock.starter_kit.data import UnlearningData, random_forget_indices
from unlearning_mock.starter_kit.settings import load_setting
from unlearning_mock.starter_kit.training import Recipe, train_models

N_TRAIN, N_TEST = 300, 100


@pytest.fixture(scope="module")
def fake_dir(tmp_path_factory):
    return write_fake_cifar10(tmp_path_factory.mktemp("cifar"), n_train=N_TRAIN, n_test=N_TEST, seed=0)


@pytest.fixture(scope="module")
def data(fake_dir):
    return load_cifar10_data(fake_dir)


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test on any download attempt or outgoing connection."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", refuse)
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def raw_split(fake_dir, names):
    """The uint8 rows [n, 3072] and labels of the named batch files, read straight from the pickles."""
    rows, labels = [], []
    for name in names:
        with open(fake_dir / "cifar-10-batches-py" / name, "rb") as handle:
            entry = pickle.load(handle, encoding="latin1")
        rows.append(entry["data"])
        labels.extend(entry["labels"])
    return np.vstack(rows), np.array(labels)


# --- loading ---------------------------------------------------------------------------------------

def test_fake_folder_is_the_real_layout(fake_dir):
    folder = fake_dir / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == sorted(CIFAR10_FILES)
    with open(folder / "data_batch_1", "rb") as handle:
        entry = pickle.load(handle, encoding="latin1")
    assert set(entry) == {"batch_label", "labels", "data", "filenames"}
    assert entry["data"].dtype == np.uint8 and entry["data"].shape[1] == 3072
    with open(folder / "batches.meta", "rb") as handle:
        assert pickle.load(handle, encoding="latin1")["label_names"][0] == "airplane"
    # stock torchvision reads the same format but insists on the official files' MD5 sums
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        torchvision.datasets.CIFAR10(str(fake_dir), train=True)
    assert not cifar10.official_cifar10_files(fake_dir)


def test_shapes_and_dtypes(data):
    assert isinstance(data, UnlearningData) and data.name == "cifar10" and data.num_classes == 10
    assert data.train_inputs.shape == (N_TRAIN, 3, 32, 32) and data.train_inputs.dtype == torch.float32
    assert data.train_inputs.is_contiguous()
    assert data.train_targets.shape == (N_TRAIN,) and data.train_targets.dtype == torch.int64
    assert data.test_inputs.shape == data.val_inputs.shape == (N_TEST // 2, 3, 32, 32)
    assert data.test_targets.dtype == data.val_targets.dtype == torch.int64
    assert sorted(data.train_targets.unique().tolist()) == list(range(10))


def test_train_images_in_file_order(fake_dir, data):
    rows, labels = raw_split(fake_dir, cifar10.CIFAR10_TRAIN_FILES)
    assert np.array_equal(data.train_targets.numpy(), labels)
    pixels = torch.from_numpy(rows.reshape(-1, 3, 32, 32)).float().div(255)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    assert torch.allclose(data.train_inputs, (pixels - mean) / std, atol=1e-6)


# --- normalisation ---------------------------------------------------------------------------------

def test_known_pixel_value(fake_dir, data):
    rows, _ = raw_split(fake_dir, cifar10.CIFAR10_TRAIN_FILES)
    for image, channel, y, x in [(0, 0, 0, 0), (7, 1, 5, 30), (N_TRAIN - 1, 2, 31, 31)]:
        value = int(rows[image, channel * 1024 + y * 32 + x])
        expected = (value / 255 - CIFAR10_MEAN[channel]) / CIFAR10_STD[channel]
        assert data.train_inputs[image, channel, y, x].item() == pytest.approx(expected, abs=1e-6)


def test_normalisation_is_bitwise_the_kits_transform(fake_dir, data):
    """Vectorised normalisation == the kit's per-image ToTensor + Normalize, exactly."""
    kit_transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)])
    held_out = cifar10._CIFAR10Folder(str(fake_dir), train=False, transform=kit_transform)
    test_set, val_set = torch.utils.data.random_split(held_out, [0.5, 0.5], generator=torch.Generator().manual_seed(42))
    assert torch.equal(torch.stack([image for image, _ in test_set]), data.test_inputs)
    assert torch.equal(torch.stack([image for image, _ in val_set]), data.val_inputs)
    assert [label for _, label in val_set] == data.val_targets.tolist()


# --- the 50/50 test/validation split ---------------------------------------------------------------

def test_split_is_the_kits(fake_dir, data):
    test_idx, val_idx = cifar10.kit_test_validation_split(N_TEST)
    assert len(test_idx) == len(val_idx) == N_TEST // 2
    assert set(test_idx).isdisjoint(val_idx) and set(test_idx) | set(val_idx) == set(range(N_TEST))
    perm = torch.randperm(N_TEST, generator=torch.Generator().manual_seed(42)).numpy()
    assert np.array_equal(test_idx, perm[:N_TEST // 2]) and np.array_equal(val_idx, perm[N_TEST // 2:])
    _, labels = raw_split(fake_dir, cifar10.CIFAR10_TEST_FILES)
    assert np.array_equal(data.test_targets.numpy(), labels[test_idx])
    assert np.array_equal(data.val_targets.numpy(), labels[val_idx])


def test_split_is_deterministic(fake_dir, data):
    again = load_cifar10_data(fake_dir)
    assert torch.equal(again.test_inputs, data.test_inputs) and torch.equal(again.val_inputs, data.val_inputs)
    assert np.array_equal(again.forget_idx, data.forget_idx)
    assert np.array_equal(cifar10.kit_test_validation_split(10_000)[0], cifar10.kit_test_validation_split(10_000)[0])
    assert [len(part) for part in cifar10.kit_test_validation_split(10_000)] == [5000, 5000]


# --- the forget set --------------------------------------------------------------------------------

def test_default_forget_set_is_random_10_percent(data):
    assert len(data.forget_idx) == N_TRAIN // 10
    assert np.array_equal(data.forget_idx, random_forget_indices(N_TRAIN, 0.1, cifar10.CIFAR10_FORGET_SEED))
    assert np.array_equal(np.sort(np.concatenate([data.forget_idx, data.retain_idx])), np.arange(N_TRAIN))


def test_forget_index_file_is_loaded_exactly(fake_dir, tmp_path):
    idx = np.random.default_rng(3).choice(N_TRAIN, 40, replace=False)  # unsorted, like any saved array
    path = tmp_path / "forget_idx.npy"
    np.save(path, idx)
    loaded = load_cifar10_data(fake_dir, forget_idx_path=path)
    assert np.array_equal(loaded.forget_idx, np.sort(idx))
    assert len(loaded.retain_idx) == N_TRAIN - 40
    forget_inputs, forget_targets = loaded.forget
    assert torch.equal(forget_inputs, loaded.train_inputs[np.sort(idx)])
    assert np.array_equal(np.load(path), idx)  # the file is only read
    np.save(path, idx.astype(np.int32))        # any integer dtype
    assert np.array_equal(load_cifar10_data(fake_dir, forget_idx_path=path).forget_idx, np.sort(idx))


@pytest.mark.parametrize("content, message", [
    (np.array([1.0, 2.0, 3.0]), "must hold integers"),
    (np.array([1, 2, 2, 5]), "repeats 1"),
    (np.array([0, 5, N_TRAIN]), rf"must lie in \[0, {N_TRAIN}\)"),
    (np.array([-1, 5]), "must lie in"),
    (np.array([[1, 2], [3, 4]]), "1-D"),
    (np.array([], dtype=np.int64), "empty"),
    (np.array([True, False]), "must hold integers"),
])
def test_bad_forget_index_files_are_rejected(fake_dir, tmp_path, content, message):
    path = tmp_path / "forget_idx.npy"
    np.save(path, content)
    with pytest.raises(ValueError, match=message) as error:
        load_cifar10_data(fake_dir, forget_idx_path=path)
    assert str(path) in str(error.value)


def test_unreadable_or_missing_forget_index_file(fake_dir, tmp_path):
    text = tmp_path / "forget_idx.npy"
    text.write_text("1, 2, 3\n")
    with pytest.raises(ValueError, match="not a NumPy .npy array"):
        load_cifar10_data(fake_dir, forget_idx_path=text)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a NumPy .npy array"):
        load_cifar10_data(fake_dir, forget_idx_path=objects)
    with pytest.raises(FileNotFoundError, match="forget_idx.npy"):
        load_cifar10_data(fake_dir, forget_idx_path=tmp_path / "absent.npy")


# --- missing files: a clear message, never a download ---------------------------------------------

def test_missing_folder_says_where_to_put_the_files(tmp_path, no_network):
    with pytest.raises(FileNotFoundError) as error:
        load_cifar10_data(tmp_path)
    message = str(error.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    for name in CIFAR10_FILES:
        assert name in message
    assert "--download" in message and "cifar-10-python.tar.gz" in message
    assert not (tmp_path / "cifar-10-batches-py").exists()


def test_partial_folder_names_the_missing_files(fake_dir, tmp_path, no_network):
    shutil.copytree(fake_dir / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="lacks test_batch"):
        load_cifar10_data(tmp_path)
    with pytest.raises(FileNotFoundError, match="pass its parent folder"):
        load_cifar10_data(tmp_path / "cifar-10-batches-py")
    with pytest.raises(ValueError, match="--data-dir"):
        load_cifar10_data(None)


def test_download_only_when_asked(tmp_path, monkeypatch):
    calls = []

    def fake_download(url, download_root, filename=None, md5=None, **kwargs):
        calls.append((url, str(download_root), filename))
        write_fake_cifar10(download_root, n_train=50, n_test=20)

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", fake_download)
    target = tmp_path / "new"
    loaded = load_cifar10_data(target, download=True)
    assert calls == [(torchvision.datasets.CIFAR10.url, str(target), "cifar-10-python.tar.gz")]
    assert len(loaded.train_targets) == 50 and len(loaded.test_targets) == 10
    load_cifar10_data(target, download=True)   # files present: no second download
    assert len(calls) == 1


def test_corrupt_batch_file_is_reported(fake_dir, tmp_path, no_network):
    shutil.copytree(fake_dir / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not in the CIFAR-10 python format"):
        load_cifar10_data(tmp_path)


# --- the setting -----------------------------------------------------------------------------------

def test_setting_builds_with_resnet18_and_the_recipe(fake_dir, tmp_path, no_network):
    setting = cifar10_setting(fake_dir)
    assert setting.name == "cifar10" and setting.data.name == "cifar10"
    assert setting.recipe == CIFAR10_RECIPE
    assert (CIFAR10_RECIPE.optimizer, CIFAR10_RECIPE.lr, CIFAR10_RECIPE.momentum, CIFAR10_RECIPE.weight_decay,
            CIFAR10_RECIPE.augment, CIFAR10_RECIPE.batch_size) == ("sgd", 0.1, 0.9, 5e-4, "crop_flip", 128)
    assert setting.batch_size == 128 and setting.dict_batches is False
    assert setting.baseline is cifar_kit_unlearning and setting.original_weights is None
    model = setting.make_model()
    assert isinstance(model, torchvision.models.ResNet) and model.fc.out_features == 10
    assert cifar10_setting(fake_dir, epochs=3, unrelated_option=1).recipe == Recipe(
        **{**CIFAR10_RECIPE.as_dict(), "epochs": 3})
    assert load_setting("cifar10", data_dir=fake_dir).recipe == CIFAR10_RECIPE
    assert setting.notes["files"].startswith("not the official")


def test_original_weights_are_checked(fake_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="weights_resnet18_cifar10.pth"):
        cifar10_setting(fake_dir, original_weights=tmp_path / "absent.pth")
    good = tmp_path / "weights_resnet18_cifar10.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None, num_classes=10).state_dict(), good)
    assert cifar10_setting(fake_dir, original_weights=good).original_weights == good
    wrong = tmp_path / "wrong.pth"
    torch.save(torchvision.models.resnet18(weights=None, num_classes=100).state_dict(), wrong)
    with pytest.raises(ValueError, match="do not fit"):
        cifar10_setting(fake_dir, original_weights=wrong)


def test_kit_recipe_trains_on_fake_data(data):
    """A tiny sanity run of the training loop with crop+flip on CIFAR-shaped tensors."""
    x, y = data.train_inputs[:64], data.train_targets[:64]
    (model,) = train_models(cifar10.resnet18, x, y, Recipe(epochs=1, batch_size=32, augment="crop_flip", lr=0.01), [0])
    assert not model.training
    with torch.no_grad():
        logits = model(x[:8])
    assert logits.shape == (8, 10) and torch.isfinite(logits).all()


# --- the CUDA path (skipped without a GPU) ---------------------------------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
def test_crop_flip_draws_the_same_crops_on_cuda(data):
    """The augmentation's randomness comes from a CPU generator: same seed, same crops on any device."""
    from unlearning_mock.starter_kit.training import augment_crop_flip

    x = data.train_inputs[:32]
    on_cpu = augment_crop_flip(x, torch.Generator().manual_seed(5))
    on_gpu = augment_crop_flip(x.cuda(), torch.Generator().manual_seed(5))
    assert on_gpu.is_cuda and torch.equal(on_gpu.cpu(), on_cpu)


@needs_cuda
def test_kit_recipe_trains_on_cuda(data):
    x, y = data.train_inputs[:64], data.train_targets[:64]
    recipe = Recipe(epochs=1, batch_size=32, augment="crop_flip", lr=0.01)
    (model,) = train_models(cifar10.resnet18, x, y, recipe, [0], "cuda")
    assert next(model.parameters()).is_cuda and not model.training
    torch.manual_seed(0)
    untrained = cifar10.resnet18()
    assert not torch.equal(model.conv1.weight.cpu(), untrained.conv1.weight)
    with torch.no_grad():
        assert torch.isfinite(model(x.cuda())).all()


@needs_cuda
def test_training_on_cuda_matches_cpu(data, monkeypatch):
    """Same initialisation and data order on both devices: the models differ by float rounding only.

    Measured without TF32 (cuDNN's default for float32 convolutions) and without crop+flip: a trained
    ResNet's eval-mode logits amplify rounding (TF32-sized rounding moves them by tens of percent,
    and the zero-padded crops make max-pool ties that rounding breaks either way), so the check would
    say nothing; the crops themselves are compared exactly above.
    """
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    x, y = data.train_inputs[:64], data.train_targets[:64]
    recipe = Recipe(epochs=1, batch_size=32, augment="none", lr=0.01)
    (gpu,) = train_models(cifar10.resnet18, x, y, recipe, [0], "cuda")
    (cpu,) = train_models(cifar10.resnet18, x, y, recipe, [0], "cpu")
    with torch.no_grad():
        gpu_logits, cpu_logits = gpu(x.cuda()).cpu(), cpu(x)
    difference, scale = (gpu_logits - cpu_logits).abs().max().item(), cpu_logits.abs().max().item()
    assert difference <= 0.05 * scale + 1e-3, (difference, scale)   # float32 vs float64 on the CPU: ~0.002
