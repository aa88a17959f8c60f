"""The two batch formats a submission's loaders can yield, and what a batch says when it is read the other way.

* ``tuples``: ``[inputs, targets]`` pairs, as the CIFAR-10 starting kit's loaders give them (the default on the
  embedded settings);
* ``kaggle``: the challenge's dicts ``{"image": inputs, "age_group": targets, ...}`` with the other columns the
  setting has (``age``, ``person_id``, ``image_id``; the default on the Kaggle layout).

A format belongs to a submission (``--batches`` after its ``--submission``). The loaders' batches are a list
(:class:`PairBatch`) or a dict (:class:`KaggleBatch`) that behave as the plain ones do, except that indexing one
the other format's way (``batch["image"]`` on a pair, ``batch[0]`` on a dict) raises a ``TypeError`` /
``KeyError`` / ``IndexError`` that names the format given and the option that gives the other.
"""

from __future__ import annotations

from torch.utils.data import default_collate

KAGGLE = "kaggle"
TUPLES = "tuples"
BATCH_FORMATS = (KAGGLE, TUPLES)
DICT_METHODS = ("get", "keys", "items", "values")


def check_format(name: str | None) -> str | None:
    """``name`` when it is a batch format (or None: the setting's default); else a ValueError."""
    if name is not None and name not in BATCH_FORMATS:
        raise ValueError(f"unknown batch format {name!r}: choose one of {', '.join(BATCH_FORMATS)} (--batches)")
    return name


def _other(given: str) -> str:
    other = TUPLES if given == KAGGLE else KAGGLE
    return f"`--batches {other}` after its `--submission` (Python API: batches={other!r})"


class PairBatch(list):
    """An ``[inputs, targets]`` batch (``--batches tuples``)."""

    def __getitem__(self, key):
        if isinstance(key, str):
            raise TypeError(f"this batch is an [inputs, targets] pair (batch format {TUPLES!r}), not a dict: it has no "
                            f"key {key!r}. Read it as `inputs, targets = batch`, or get the challenge's dicts "
                            f"(batch['image'], batch['age_group']) with {_other(TUPLES)}")
        try:
            return super().__getitem__(key)
        except IndexError:
            raise IndexError(f"this batch is an [inputs, targets] pair (batch format {TUPLES!r}) of {len(self)} items: "
                             f"it has no item {key!r}. The challenge's dicts, with their other columns, come with "
                             f"{_other(TUPLES)}") from None

    def __getattr__(self, name):
        if name in DICT_METHODS:
            raise AttributeError(f"this batch is an [inputs, targets] pair (batch format {TUPLES!r}), not a dict: it "
                                 f"has no .{name}(). Get the challenge's dicts with {_other(TUPLES)}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class KaggleBatch(dict):
    """A batch as the challenge's loaders gave it (``--batches kaggle``): a dict of columns."""

    def __missing__(self, key):
        if isinstance(key, str):
            raise KeyError(f"this Kaggle dict batch has no key {key!r} on this setting; it has {sorted(self)} "
                           "(the README's 'Bring your own submission' lists the keys per setting)")
        raise KeyError(f"this batch is a Kaggle dict (batch format {KAGGLE!r}) with keys {sorted(self)}: it has no "
                       f"key {key!r}. Read it as batch['image'], batch['age_group'], or get [inputs, targets] pairs "
                       f"with {_other(KAGGLE)}")


def collate_pairs(items) -> PairBatch:
    return PairBatch(default_collate(items))


def collate_dicts(items) -> KaggleBatch:
    return KaggleBatch(default_collate(items))


def failure_hint(error: BaseException, given: str) -> str:
    """A sentence to add to a submission's failure when it looks like a dict batch read as a pair (unpacked into
    its keys: ``inputs, targets = batch``); empty otherwise."""
    text = str(error)
    unpacked = ((isinstance(error, ValueError) and "values to unpack" in text)
                or (isinstance(error, (AttributeError, TypeError)) and "'str'" in text))
    if given != KAGGLE or not unpacked:
        return ""
    return (f" -- the loaders yield Kaggle dicts (batch format {KAGGLE!r}); if unlearning() reads [inputs, targets] "
            f"pairs, score it with {_other(KAGGLE)}")
