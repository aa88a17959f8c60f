"""Reading submission.zip: the happy path and every refusal."""

from __future__ import annotations

import io
import os
import pickle
import stat
import zipfile

import pytest
import torch

from unlearning_mock.mock_evaluator.kaggle.checkpoint_zip import SubmissionZipError, _read_member, read_checkpoints
from unlearning_mock.starter_kit.models import SmallResNet


def make_model():
    return SmallResNet()


def state_bytes(state) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def checkpoint(seed: int) -> dict:
    torch.manual_seed(seed)
    return SmallResNet().state_dict()


def write_zip(path, members: dict) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            if isinstance(data, zipfile.ZipInfo):
                archive.writestr(data, b"target")
            else:
                archive.writestr(name, data)
    return str(path)


def good_members(count: int = 3, prefix: str = "") -> dict:
    return {f"{prefix}unlearned_checkpoint_{i}.pth": state_bytes(checkpoint(i)) for i in range(count)}


def test_happy_path_ordered_by_index(tmp_path):
    members = good_members()
    shuffled = {name: members[name] for name in sorted(members, reverse=True)}  # 2, 1, 0 in the archive
    shuffled["kaggle/"] = b""                                                    # a directory entry: ignored
    path = write_zip(tmp_path / "submission.zip", shuffled)
    states = read_checkpoints(path, make_model, expected_count=3)
    assert len(states) == 3
    for i, state in enumerate(states):
        expected = checkpoint(i)
        assert state.keys() == expected.keys()
        assert all(torch.equal(state[key], expected[key]) for key in expected)


def test_folder_prefix_as_kaggles_zip_wrote_it(tmp_path):
    # the organisers' notebook ran `zip submission.zip /kaggle/tmp/*.pth`: members kaggle/tmp/...
    path = write_zip(tmp_path / "s.zip", good_members(prefix="kaggle/tmp/"))
    assert len(read_checkpoints(path, make_model, expected_count=3)) == 3


@pytest.mark.parametrize("bad_name, message", [
    ("../unlearned_checkpoint_2.pth", "'..' path components"),
    ("a/../../unlearned_checkpoint_2.pth", "'..' path components"),
    ("/tmp/unlearned_checkpoint_2.pth", "absolute paths"),
    ("C:/unlearned_checkpoint_2.pth", "absolute paths"),
    ("a\\unlearned_checkpoint_2.pth", "backslashes"),
    ("notes.txt", "not a .pth checkpoint"),
    ("model.pth", "must be named unlearned_checkpoint_"),
    ("unlearned_checkpoint_02.pth", "must be named unlearned_checkpoint_"),
])
def test_bad_member_names(tmp_path, bad_name, message):
    members = good_members(2)
    members[bad_name] = state_bytes(checkpoint(2))
    path = write_zip(tmp_path / "s.zip", members)
    with pytest.raises(SubmissionZipError, match=message) as error:
        read_checkpoints(path, make_model, expected_count=3)
    assert repr(bad_name) in str(error.value)


def test_symlink_member(tmp_path):
    members = good_members(2)
    link = zipfile.ZipInfo("unlearned_checkpoint_2.pth")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    members[link.filename] = link
    path = write_zip(tmp_path / "s.zip", members)
    with pytest.raises(SubmissionZipError, match="symbolic links.*unlearned_checkpoint_2.pth|unlearned_checkpoint_2.pth.*symbolic links"):
        read_checkpoints(path, make_model, expected_count=3)


def test_wrong_count_missing_and_duplicate_index(tmp_path):
    path = write_zip(tmp_path / "two.zip", good_members(2))
    with pytest.raises(SubmissionZipError, match="holds 2 checkpoint.*exactly 3"):
        read_checkpoints(path, make_model, expected_count=3)
    path = write_zip(tmp_path / "four.zip", good_members(4))
    with pytest.raises(SubmissionZipError, match="holds 4 checkpoint.*exactly 3"):
        read_checkpoints(path, make_model, expected_count=3)
    members = good_members(2)
    members["unlearned_checkpoint_5.pth"] = state_bytes(checkpoint(5))
    with pytest.raises(SubmissionZipError, match=r"0..2; missing \[2\]"):
        read_checkpoints(write_zip(tmp_path / "gap.zip", members), make_model, expected_count=3)
    members = good_members(3)
    members["sub/unlearned_checkpoint_0.pth"] = state_bytes(checkpoint(0))
    with pytest.raises(SubmissionZipError, match="both hold checkpoint 0"):
        read_checkpoints(write_zip(tmp_path / "dup.zip", members), make_model, expected_count=4)


class Payload:
    """Unpickling this would create a folder: weights_only must refuse to run it."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (self.target,)


@pytest.mark.parametrize("kind", ["list", "reduce_payload", "plain_object", "non_tensor_values", "garbage"])
def test_not_a_state_dict(tmp_path, kind):
    marker = tmp_path / "pwned"
    data = {
        "list": lambda: state_bytes([torch.zeros(3), torch.ones(2)]),
        "reduce_payload": lambda: pickle.dumps(Payload(str(marker))),
        "plain_object": lambda: state_bytes({"net": Payload(str(marker))}),
        "non_tensor_values": lambda: state_bytes({**checkpoint(1), "conv1.weight": 3}),
        "garbage": lambda: b"definitely not a checkpoint",
    }[kind]()
    members = good_members(2)
    members["unlearned_checkpoint_2.pth"] = data
    path = write_zip(tmp_path / "s.zip", members)
    match = {"list": "holds a list, not a state dict", "non_tensor_values": "entry 'conv1.weight' is a int"}.get(
        kind, "weights_only=True refused it")
    with pytest.raises(SubmissionZipError, match=match) as error:
        read_checkpoints(path, make_model, expected_count=3)
    assert "unlearned_checkpoint_2.pth" in str(error.value)
    assert not marker.exists()


def test_mismatched_state_dicts(tmp_path):
    wider = SmallResNet(widths=(8, 16, 64)).state_dict()
    members = good_members(2)
    members["unlearned_checkpoint_2.pth"] = state_bytes(wider)
    with pytest.raises(SubmissionZipError, match=r"unlearned_checkpoint_2.pth.*'layer3.conv1.weight' has shape"):
        read_checkpoints(write_zip(tmp_path / "wide.zip", members), make_model, expected_count=3)
    partial = checkpoint(2)
    del partial["fc.weight"]
    partial["extra.weight"] = torch.zeros(1)
    members["unlearned_checkpoint_2.pth"] = state_bytes(partial)
    with pytest.raises(SubmissionZipError, match=r"missing keys \['fc.weight'\], unexpected keys \['extra.weight'\]"):
        read_checkpoints(write_zip(tmp_path / "keys.zip", members), make_model, expected_count=3)
    members["unlearned_checkpoint_2.pth"] = state_bytes({**checkpoint(2), "bn1.num_batches_tracked": torch.tensor(1.5)})
    with pytest.raises(SubmissionZipError, match="num_batches_tracked' has dtype torch.float32"):
        read_checkpoints(write_zip(tmp_path / "dtype.zip", members), make_model, expected_count=3)
    members["unlearned_checkpoint_2.pth"] = state_bytes({**checkpoint(2), "fc.bias": torch.zeros(10).to_sparse()})
    with pytest.raises(SubmissionZipError, match="dense tensors"):
        read_checkpoints(write_zip(tmp_path / "sparse.zip", members), make_model, expected_count=3)


def test_size_limits(tmp_path):
    path = write_zip(tmp_path / "s.zip", good_members())
    member_size = len(state_bytes(checkpoint(0)))
    with pytest.raises(SubmissionZipError, match="declares .* bytes, over the limit of 1000 bytes per checkpoint"):
        read_checkpoints(path, make_model, expected_count=3, max_member_bytes=1000)
    with pytest.raises(SubmissionZipError, match="declare over .* bytes in total"):
        read_checkpoints(path, make_model, expected_count=3, max_total_bytes=2 * member_size + 10)
    with pytest.raises(SubmissionZipError, match="over the limit of 100 bytes"):
        read_checkpoints(path, make_model, expected_count=3, max_archive_bytes=100)
    # the bytes actually read are limited too, whatever the header declares
    with zipfile.ZipFile(path) as archive:
        info = archive.infolist()[0]
        with pytest.raises(SubmissionZipError, match="once read"):
            _read_member(archive, info, max_member_bytes=member_size - 1)
    # a highly compressible member: its declared (uncompressed) size counts, not the compressed one
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in good_members(2).items():
            archive.writestr(name, data)
        archive.writestr("unlearned_checkpoint_2.pth", b"\0" * (8 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(SubmissionZipError, match="unlearned_checkpoint_2.pth' declares"):
        read_checkpoints(bomb, make_model, expected_count=3)


def test_empty_and_broken_archives(tmp_path):
    empty = tmp_path / "submission.zip"
    empty.write_bytes(b"")
    with pytest.raises(SubmissionZipError, match="empty.*empty.txt"):
        read_checkpoints(empty, make_model, expected_count=3)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SubmissionZipError, match="not a readable zip"):
        read_checkpoints(broken, make_model, expected_count=3)
    with pytest.raises(SubmissionZipError, match="does not exist"):
        read_checkpoints(tmp_path / "nowhere.zip", make_model, expected_count=3)
    assert issubclass(SubmissionZipError, ValueError)
