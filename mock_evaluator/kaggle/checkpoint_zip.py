"""Reading a Kaggle ``submission.zip`` (``unlearned_checkpoint_{i}.pth`` state dicts) safely.

The zip comes from outside, so nothing in it is trusted:

* nothing is extracted: members are read into memory (never more than the size limits);
* member names must be relative paths without ``..`` components, backslashes or drive letters;
  symlink entries, encrypted members and duplicate names are refused; directory entries are ignored;
* every other member must be ``[dirs/]unlearned_checkpoint_{i}.pth`` (the organisers' notebook ran
  ``zip submission.zip /kaggle/tmp/*.pth``, which stores ``kaggle/tmp/...``; so a folder prefix is
  allowed), with indices exactly ``0 .. N-1``;
* the archive file, each member's declared size, their declared total, and the bytes actually read
  are checked against limits (by default twice the model's state-dict size per member);
* members load with ``torch.load(weights_only=True, map_location="cpu")`` (no arbitrary pickles),
  must be a dict of ``str -> dense tensor`` whose keys and shapes match ``make_model().state_dict()``.

Every refusal is a :class:`SubmissionZipError` that names the archive member at fault.
"""

from __future__ import annotations

import io
import re
import stat
import warnings
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterator

import torch

EXPECTED_COUNT = 512
CHECKPOINT_NAME = re.compile(r"^unlearned_checkpoint_(0|[1-9][0-9]*)\.pth$")
_CHUNK = 1 << 20


class SubmissionZipError(ValueError):
    """A submission.zip (or one of its members) that cannot be scored, and why."""


def state_dict_bytes(state: dict) -> int:
    return sum(t.numel() * t.element_size() for t in state.values() if isinstance(t, torch.Tensor))


def _check_name(info: zipfile.ZipInfo) -> str:
    """The member's base name, after refusing unsafe names and entry types."""
    name = info.filename
    if "\\" in name or "\x00" in name:
        raise SubmissionZipError(f"member {name!r}: backslashes and NUL characters are not allowed in names")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise SubmissionZipError(f"member {name!r}: absolute paths are not allowed")
    parts = PurePosixPath(name).parts
    if ".." in parts:
        raise SubmissionZipError(f"member {name!r}: '..' path components are not allowed")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise SubmissionZipError(f"member {name!r}: symbolic links are not allowed")
    if info.flag_bits & 0x1:
        raise SubmissionZipError(f"member {name!r}: encrypted members are not allowed")
    return parts[-1] if parts else ""


def _index_members(archive: zipfile.ZipFile, expected_count: int, max_member_bytes: int,
                   max_total_bytes: int) -> list[tuple[int, zipfile.ZipInfo]]:
    seen_names, by_index = set(), {}
    total = 0
    for info in archive.infolist():
        base = _check_name(info)
        if info.filename in seen_names:
            raise SubmissionZipError(f"member {info.filename!r} appears twice in the archive")
        seen_names.add(info.filename)
        if info.is_dir():
            continue
        if not base.endswith(".pth"):
            raise SubmissionZipError(f"member {info.filename!r} is not a .pth checkpoint: a submission holds "
                                     "only unlearned_checkpoint_{i}.pth files")
        match = CHECKPOINT_NAME.match(base)
        if match is None:
            raise SubmissionZipError(f"member {info.filename!r}: checkpoints must be named "
                                     "unlearned_checkpoint_{i}.pth (i = 0, 1, ...)")
        index = int(match.group(1))
        if index in by_index:
            raise SubmissionZipError(f"members {by_index[index].filename!r} and {info.filename!r} both hold "
                                     f"checkpoint {index}")
        if info.file_size > max_member_bytes:
            raise SubmissionZipError(f"member {info.filename!r} declares {info.file_size} bytes, over the "
                                     f"limit of {max_member_bytes} bytes per checkpoint")
        total += info.file_size
        if total > max_total_bytes:
            raise SubmissionZipError(f"the members declare over {max_total_bytes} bytes in total (limit), "
                                     f"passed at member {info.filename!r}")
        by_index[index] = info
    if len(by_index) != expected_count:
        raise SubmissionZipError(f"the archive holds {len(by_index)} checkpoint(s); exactly {expected_count} "
                                 "are required (as Kaggle required 512)")
    missing = sorted(set(range(expected_count)) - set(by_index))
    if missing:
        raise SubmissionZipError(f"checkpoint indices must be 0..{expected_count - 1}; missing "
                                 f"{missing[:10]}{' ...' if len(missing) > 10 else ''}")
    return sorted(by_index.items())


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_member_bytes: int) -> bytes:
    """The member's bytes, refusing more than ``max_member_bytes`` whatever its header declares."""
    buffer = io.BytesIO()
    try:
        with archive.open(info) as handle:
            while True:
                chunk = handle.read(_CHUNK)
                if not chunk:
                    break
                if buffer.tell() + len(chunk) > max_member_bytes:
                    raise SubmissionZipError(f"member {info.filename!r} holds over {max_member_bytes} bytes "
                                             "once read (limit)")
                buffer.write(chunk)
    except SubmissionZipError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as error:
        raise SubmissionZipError(f"member {info.filename!r} cannot be read: {error}") from error
    return buffer.getvalue()


def _load_state(data: bytes, name: str, reference: dict) -> dict:
    try:
        with warnings.catch_warnings():  # torch's notes on odd pickles: the refusal below says enough
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # weights_only refuses any pickle that is not plain tensors/containers
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SubmissionZipError(f"member {name!r} is not a loadable tensor checkpoint "
                                 f"(torch.load with weights_only=True refused it: {first})") from error
    if not isinstance(state, dict):
        raise SubmissionZipError(f"member {name!r} holds a {type(state).__name__}, not a state dict "
                                 "(a dict of tensors)")
    bad = [key for key, value in state.items() if not isinstance(key, str) or not isinstance(value, torch.Tensor)
           or value.layout != torch.strided or value.is_quantized]
    if bad:
        key = bad[0]
        raise SubmissionZipError(f"member {name!r} is not a state dict of dense tensors: entry {key!r} "
                                 f"is a {type(state[key]).__name__}")
    missing = [key for key in reference if key not in state]
    unexpected = [key for key in state if key not in reference]
    if missing or unexpected:
        raise SubmissionZipError(f"member {name!r} does not match the model's state dict: missing keys "
                                 f"{missing[:5]}{' ...' if len(missing) > 5 else ''}, unexpected keys "
                                 f"{unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    for key, expected in reference.items():
        if tuple(state[key].shape) != tuple(expected.shape):
            raise SubmissionZipError(f"member {name!r}: {key!r} has shape {tuple(state[key].shape)}, the model "
                                     f"needs {tuple(expected.shape)}")
        if state[key].is_floating_point() != expected.is_floating_point():
            raise SubmissionZipError(f"member {name!r}: {key!r} has dtype {state[key].dtype}, the model "
                                     f"needs {expected.dtype}")
    return dict(state)


def default_limits(make_model, expected_count: int) -> tuple[int, int]:
    """(per-member, total) byte limits: twice the model's state-dict size plus 1 MiB, times the count."""
    member = 2 * state_dict_bytes(make_model().state_dict()) + (1 << 20)
    return member, member * expected_count


def iter_checkpoints(zip_path, make_model, expected_count: int = EXPECTED_COUNT,
                     max_member_bytes: int | None = None, max_total_bytes: int | None = None,
                     max_archive_bytes: int | None = None) -> Iterator[dict]:
    """The checkpoints of ``zip_path`` one at a time, in index order (see :func:`read_checkpoints`).

    The archive's structure (names, count, declared sizes) is checked before the first yield; each
    member's content is checked as it is loaded.
    """
    path = Path(zip_path)
    if expected_count < 1:
        raise ValueError(f"expected_count must be >= 1, got {expected_count}")
    reference = make_model().state_dict()
    default_member, default_total = default_limits(make_model, expected_count)
    max_member_bytes = default_member if max_member_bytes is None else int(max_member_bytes)
    max_total_bytes = default_total if max_total_bytes is None else int(max_total_bytes)
    max_archive_bytes = max_total_bytes + (64 << 20) if max_archive_bytes is None else int(max_archive_bytes)
    if not path.is_file():
        raise SubmissionZipError(f"{path} does not exist or is not a file")
    size = path.stat().st_size
    if size == 0:
        raise SubmissionZipError(f"{path} is empty (0 bytes): that is what the notebook writes in Kaggle's "
                                 "public mock run (empty.txt in the input); run it against a real input")
    if size > max_archive_bytes:
        raise SubmissionZipError(f"{path} has {size} bytes, over the limit of {max_archive_bytes} bytes")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as error:
        raise SubmissionZipError(f"{path} is not a readable zip archive: {error}") from error
    with archive:
        members = _index_members(archive, expected_count, max_member_bytes, max_total_bytes)
        read_total = 0
        for _, info in members:
            data = _read_member(archive, info, max_member_bytes)
            read_total += len(data)
            if read_total > max_total_bytes:
                raise SubmissionZipError(f"the members hold over {max_total_bytes} bytes in total once read "
                                         f"(limit), passed at member {info.filename!r}")
            yield _load_state(data, info.filename, reference)


def read_checkpoints(zip_path, make_model, expected_count: int = EXPECTED_COUNT,
                     max_member_bytes: int | None = None, max_total_bytes: int | None = None,
                     max_archive_bytes: int | None = None) -> list[dict]:
    """The ``expected_count`` state dicts in a submission.zip, ordered by ``i`` in ``unlearned_checkpoint_{i}.pth``.

    ``make_model()`` builds the model the checkpoints must fit (keys and shapes of its state dict).
    Limits default to twice the model's state-dict size + 1 MiB per member, that times the count in
    total, and the total + 64 MiB for the archive file. Raises :class:`SubmissionZipError`.
    """
    return list(iter_checkpoints(zip_path, make_model, expected_count, max_member_bytes, max_total_bytes,
                                 max_archive_bytes))
