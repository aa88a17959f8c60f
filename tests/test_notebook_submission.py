"""A Kaggle notebook as a submission, and the challenge's batch format on every setting: what a notebook keeps and
leaves out, the error for a name it left out, dict and pair batches on digits, mnist-groups and the Kaggle layout,
the wrong-format error, the runs' cache key (kept code and batch format), the round trip through ``package``, and
the organisers' sample notebook scored unchanged (real digits runs, small N)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from unlearning_mock.mock_evaluator.api import _config as _api_config
from unlearning_mock.mock_evaluator.api import _submission_specs
from unlearning_mock.mock_evaluator.cli import _config, _parser, main
from unlearning_mock.mock_evaluator.evaluate import EvalConfig, Evaluation
from unlearning_mock.mock_evaluator.kaggle.mock_input import write_mock_layout
from unlearning_mock.mock_evaluator.kaggle.notebook import main as package
from unlearning_mock.mock_evaluator.kaggle.notebook_source import read_notebook, run_cells
from unlearning_mock.mock_evaluator.method import method_from_spec
from unlearning_mock.starter_kit.batch_format import KaggleBatch, PairBatch, failure_hint
from unlearning_mock.starter_kit.data import load_digits_data, make_loaders
from unlearning_mock.starter_kit.kaggle import load_kaggle_data
from unlearning_mock.starter_kit.mnist_groups import load_mnist_groups_data

N = 4
ROOT = Path(__file__).resolve().parents[1]
KAGGLE_INPUT = "/kaggle/input/neurips-2023-machine-unlearning"

# The organisers' sample notebook ("run-unlearn-finetune"), cell by cell, as shared/CHALLENGE_FACTS.md describes it.
PIP = "!pip install -q tqdm"
IMPORTS = """\
import os
import subprocess

import pandas as pd
import torch
import torchvision
from torch import nn, optim
from torch.utils.data import DataLoader, Dataset
from torchvision.models import resnet18

DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'
print('Running on device:', DEVICE.upper())"""
ACCELERATOR = """\
if DEVICE != 'cuda':
    raise RuntimeError('Make sure you have added an accelerator to your notebook; the submission will fail otherwise!')"""
DATASET = f"""\
def load_example(df_row):
    image = torchvision.io.read_image(df_row['image_path'])
    return {{'image': image, 'image_id': df_row['image_id'], 'age_group': df_row['age_group'],
            'age': df_row['age'], 'person_id': df_row['person_id']}}


class HiddenDataset(Dataset):
    '''The hidden dataset.'''
    def __init__(self, split='train'):
        super().__init__()
        self.examples = []
        df = pd.read_csv(f'{KAGGLE_INPUT}/{{split}}.csv')
        df['image_path'] = df['image_id'].apply(
            lambda x: os.path.join('{KAGGLE_INPUT}', 'images', x.split('-')[0], x.split('-')[1] + '.png'))
        df = df.sort_values(by='image_path')
        df.apply(lambda row: self.examples.append(load_example(row)), axis=1)

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, idx):
        example = self.examples[idx]
        example['image'] = example['image'].to(torch.float32)
        return example


def get_dataset(batch_size):
    retain_loader = DataLoader(HiddenDataset(split='retain'), batch_size=batch_size, shuffle=True)
    forget_loader = DataLoader(HiddenDataset(split='forget'), batch_size=batch_size, shuffle=True)
    validation_loader = DataLoader(HiddenDataset(split='validation'), batch_size=batch_size, shuffle=True)
    return retain_loader, forget_loader, validation_loader"""
UNLEARNING = """\
def unlearning(net, retain_loader, forget_loader, val_loader):
    '''Unlearning by fine-tuning: one epoch on the retain set.'''
    epochs = 1
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    net.train()
    for _ in range(epochs):
        net.train()
        for sample in retain_loader:
            inputs = sample["image"]
            targets = sample["age_group"]
            inputs, targets = inputs.to(DEVICE), targets.to(DEVICE)
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, targets)
            loss.backward()
            optimizer.step()
        scheduler.step()
    net.eval()"""
DRIVER = f"""\
if os.path.exists('{KAGGLE_INPUT}/empty.txt'):
    # mock submission
    subprocess.run('touch submission.zip', shell=True)
else:
    os.makedirs('/kaggle/tmp', exist_ok=True)
    retain_loader, forget_loader, validation_loader = get_dataset(64)
    net = resnet18(weights=None, num_classes=10)
    net.to(DEVICE)
    for i in range(512):
        net.load_state_dict(torch.load('{KAGGLE_INPUT}/original_model.pth'))
        unlearning(net, retain_loader, forget_loader, validation_loader)
        state = net.state_dict()
        torch.save(state, f'/kaggle/tmp/unlearned_checkpoint_{{i}}.pth')
    unlearned_ckpts = os.listdir('/kaggle/tmp')
    if len(unlearned_ckpts) != 512:
        raise RuntimeError('Expected exactly 512 checkpoints. The submission will throw an exception otherwise.')
    subprocess.run('zip submission.zip /kaggle/tmp/*.pth', shell=True)"""
SAMPLE = [("md", "# Machine unlearning: fine-tune on the retain set"), ("code", PIP), ("code", IMPORTS),
          ("code", ACCELERATOR), ("md", "Helpers for the hidden dataset."), ("code", DATASET), ("code", UNLEARNING),
          ("code", DRIVER)]
SAMPLE_CELL = {"pip": 2, "imports": 3, "accelerator": 4, "dataset": 6, "unlearning": 7, "driver": 8}


def write_notebook(path: Path, cells) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[new_markdown_cell(text) if kind == "md" else new_code_cell(text)
                                       for kind, text in cells]), str(path))
    return str(path)


def replaced(cells, old: str, new: str):
    """``cells`` with ``old`` replaced by ``new`` in the one cell that holds it."""
    assert sum(old in text for _, text in cells) == 1, old
    return [(kind, text.replace(old, new)) for kind, text in cells]


# -- what a notebook keeps -----------------------------------------------------------------------------------
def test_the_sample_keeps_its_definitions_and_leaves_out_its_driver(tmp_path):
    source = read_notebook(write_notebook(tmp_path / "sample.ipynb", SAMPLE))
    kept = {name: part.cell for part in source.kept for name in part.defines}
    assert kept["DEVICE"] == kept["torch"] == SAMPLE_CELL["imports"]
    assert kept["HiddenDataset"] == kept["get_dataset"] == SAMPLE_CELL["dataset"]
    assert kept["unlearning"] == SAMPLE_CELL["unlearning"]
    left_out = {part.cell: part.why for part in source.left_out}
    assert left_out[SAMPLE_CELL["pip"]] == "a shell or magic line"
    assert left_out[SAMPLE_CELL["accelerator"]] == "an if block: raises"
    assert left_out[SAMPLE_CELL["driver"]].startswith("an if block")
    assert [p.text for p in source.left_out if p.cell == SAMPLE_CELL["imports"]] == [
        "print('Running on device:', DEVICE.upper())"]
    line = source.summary()
    assert "\n" not in line and line.startswith("sample.ipynb: kept cell 3 (imports, DEVICE)")
    assert "cell 7 (unlearning)" in line and "left out cell 2 (`!pip install -q tqdm`)" in line
    assert "cell 8 (`if os.path.exists(" in line
    # only kept code travels; it runs without the Kaggle input, and a traceback points into the cell
    assert "range(512)" not in source.code and "pip" not in source.code and "raise RuntimeError" not in source.code
    namespace = {}
    run_cells(source.cells, namespace)
    function = namespace["unlearning"]
    assert function.__code__.co_filename.endswith("sample.ipynb (cell 7)") and function.__code__.co_firstlineno == 1
    assert namespace["DEVICE"] in ("cpu", "cuda") and "retain_loader" not in namespace


def test_what_counts_as_defining(tmp_path):
    cells = [("code", "%matplotlib inline\nimport json\nfiles = !ls\n"
                      "try:\n    import tqdm\nexcept ImportError:\n    tqdm = None\n"
                      "LR = 0.01; print(LR)\n"
                      "CONFIG = json.load(open('/kaggle/input/config.json'))\n"
                      "SCALE = 2 * LR\n"
                      "@staticmethod\ndef unused():\n    return files\n"
                      "def make_row(i):\n    return i\n"
                      "ROWS = [make_row(i) for i in range(3)]\n"
                      "def read_rows():\n    return [make_row(int(line)) for line in open('rows.txt')]\n"
                      "TABLE = sorted(read_rows())\n"
                      "def rows_of_table():\n    return read_rows()\n"
                      "ALSO = rows_of_table()\n"
                      "for i in range(3):\n    pass\n"),
             ("code", "%%capture\n!pip install nothing"),
             ("code", "def unlearning(net, retain_loader, forget_loader, validation_loader, lr=LR):\n"
                      "    return net")]
    source = read_notebook(write_notebook(tmp_path / "rules.ipynb", cells))
    kept = [name for part in source.kept for name in part.defines]
    assert kept == ["json", "tqdm", "LR", "SCALE", "unused", "make_row", "ROWS", "read_rows", "rows_of_table",
                    "unlearning"]
    why = {part.defines[0] if part.defines else part.text: part.why for part in source.left_out}
    assert why["files"] == why["%matplotlib inline"] == "a shell or magic line"
    assert why["CONFIG"] == "reads a file (json.load())"
    assert why["TABLE"] == "calls read_rows(), which reads a file (open())"
    assert why["ALSO"] == "calls rows_of_table(), which reads a file through read_rows() (open())"
    assert why["i"] == "a loop" and why["print(LR)"] == "a call or expression"
    assert why["%%capture"] == "a cell magic"
    namespace = {}
    run_cells(source.cells, namespace)   # `LR = 0.01; print(LR)` keeps its first statement, at its line
    assert namespace["SCALE"] == 0.02 and namespace["unlearning"].__defaults__ == (0.01,)
    assert namespace["ROWS"] == [0, 1, 2]   # a function of the notebook that reads no file may be called


def test_a_name_unlearning_needs_that_was_left_out_is_named_with_its_cell(tmp_path):
    needs_data = replaced(SAMPLE, "    epochs = 1\n", "    epochs = len(retain_ds) // 1000 + 1\n")
    needs_data.insert(SAMPLE_CELL["unlearning"] - 1, ("code", "retain_ds = HiddenDataset(split='retain')"))
    with pytest.raises(ValueError, match=r"unlearning\(\) needs retain_ds.*`retain_ds` is bound in cell 7 by "
                                         r"`retain_ds = HiddenDataset\(split='retain'\)`.*calls HiddenDataset\(\), "
                                         r"which reads a file \(pd.read_csv\(\)\)"):
        read_notebook(write_notebook(tmp_path / "needs_data.ipynb", needs_data))
    # transitively: through a helper of the notebook, to a name that reads a file
    through_helper = SAMPLE + [("code", "SETTINGS = json.load(open('settings.json'))\n\n"
                                        "def learning_rate():\n    return SETTINGS['lr']")]
    through_helper = replaced(through_helper, "lr=0.001", "lr=learning_rate()")
    with pytest.raises(ValueError, match=r"needs SETTINGS.*cell 9.*reads a file"):
        read_notebook(write_notebook(tmp_path / "through_helper.ipynb", through_helper))
    with pytest.raises(ValueError, match=r"needs files.*bound in cell 1 by `files = !ls`.*a shell or magic line"):
        read_notebook(write_notebook(tmp_path / "shell.ipynb", [("code", "files = !ls\n"
                                                                         "def unlearning(net, *loaders):\n"
                                                                         "    return files")]))
    with pytest.raises(ValueError, match="defines no function `unlearning"):
        read_notebook(write_notebook(tmp_path / "none.ipynb", [("code", "import torch")]))
    with pytest.raises(ValueError, match="cell 2 does not parse"):
        read_notebook(write_notebook(tmp_path / "broken.ipynb", [("md", "x"), ("code", "def unlearning(:")]))


def test_the_fingerprint_follows_the_kept_code_only(tmp_path):
    path = tmp_path / "sample.ipynb"
    first = method_from_spec(write_notebook(path, SAMPLE))
    assert (first.kind, first.name, first.batches) == ("notebook", "sample", None)
    assert first.source == read_notebook(path).cells
    for edited in (replaced(SAMPLE, "# Machine unlearning", "# Unlearning, by fine-tuning"),
                   replaced(SAMPLE, "range(512)", "range(4)"),
                   replaced(SAMPLE, PIP, PIP + "\n!pip install -q timm"),
                   SAMPLE[:SAMPLE_CELL["driver"] - 1]):
        assert method_from_spec(write_notebook(path, edited)).fingerprint == first.fingerprint
    assert method_from_spec(write_notebook(path, replaced(SAMPLE, "lr=0.001", "lr=0.002"))).fingerprint != first.fingerprint
    assert method_from_spec(write_notebook(path, replaced(SAMPLE, "DEVICE = ", "DEVICE = 'cpu' or "))).fingerprint \
        != first.fingerprint


# -- the batch formats ---------------------------------------------------------------------------------------
def first_batches(data, dict_batches: bool) -> dict:
    loaders = make_loaders(data, batch_size=8, seed=0, dict_batches=dict_batches)
    return {name: next(iter(getattr(loaders, name))) for name in ("retain", "forget", "validation")}


@pytest.fixture(scope="module")
def mnist_groups():
    return load_mnist_groups_data()


def test_both_batch_formats_on_digits_and_mnist_groups(mnist_groups):
    for data, people in ((load_digits_data(), False), (mnist_groups, True)):
        pairs, dicts = first_batches(data, False), first_batches(data, True)
        for name in pairs:
            inputs, targets = pairs[name]
            assert isinstance(pairs[name], PairBatch) and isinstance(dicts[name], KaggleBatch)
            assert inputs.dtype == torch.float32 and inputs.shape == (8, 1, 8, 8) and targets.dtype == torch.int64
            assert torch.equal(dicts[name]["image"], inputs) and torch.equal(dicts[name]["age_group"], targets)
            with_people = people and name != "validation"   # groups (people) are drawn in the train set only
            assert set(dicts[name]) == {"image", "age_group"} | ({"person_id"} if with_people else set()), name
    # on mnist-groups a person is a group of near-duplicates: the forget set holds whole groups
    forget_people = first_batches(mnist_groups, True)["forget"]["person_id"]
    groups = mnist_groups.extra_columns["person_id"]
    for person in forget_people.tolist():
        assert set(np.flatnonzero(groups == person)) <= set(mnist_groups.forget_idx)


def test_the_kaggle_layout_has_every_column(tmp_path):
    root = write_mock_layout(tmp_path / "input", seed=1, max_images={"train": 40, "validation": 10, "test": 10})
    data = load_kaggle_data(root)
    batches = first_batches(data, True)
    for name, batch in batches.items():
        assert set(batch) == {"image", "age_group", "age", "person_id", "image_id"}, name
        assert batch["image"].shape[1:] == (3, 32, 32) and isinstance(batch["image_id"][0], str)
    validation = pd.read_csv(root / "validation.csv", dtype={"image_id": str})
    assert list(batches["validation"]["image_id"]) == list(validation["image_id"][:8])
    assert batches["validation"]["person_id"].tolist() == validation["person_id"][:8].tolist()


def test_a_batch_read_the_other_way_says_which_format_it_is():
    pair = first_batches(load_digits_data(), False)["retain"]
    with pytest.raises(TypeError, match=r"pair \(batch format 'tuples'\).*no key 'image'.*`--batches kaggle`"):
        pair["image"]
    with pytest.raises(IndexError, match=r"'tuples'\) of 2 items: it has no item 2.*`--batches kaggle`"):
        pair[2]
    with pytest.raises(AttributeError, match=r"not a dict: it has no \.items\(\).*`--batches kaggle`"):
        pair.items()
    assert not hasattr(pair, "_fields")   # an ordinary list otherwise
    batch = first_batches(load_digits_data(), True)["retain"]
    with pytest.raises(KeyError, match=r"Kaggle dict \(batch format 'kaggle'\).*no key 0.*`--batches tuples`"):
        batch[0]
    with pytest.raises(KeyError, match=r"no key 'person_id' on this setting; it has \['age_group', 'image'\]"):
        batch["person_id"]
    unpacked = ValueError("too many values to unpack (expected 2)")
    assert "`--batches tuples`" in failure_hint(unpacked, "kaggle") and failure_hint(unpacked, "tuples") == ""
    assert failure_hint(KeyError("weight"), "kaggle") == ""


def test_the_batch_format_belongs_to_a_submission_on_the_command_line():
    args = _parser("evaluate").parse_args(["--submission", "a.ipynb", "--batches", "kaggle", "--submission", "b.py",
                                           "--submission-option", "lr=0.1", "--submission", "c.ipynb",
                                           "--batches", "tuples"])
    assert _config(args, args.submissions).submissions == (("a.ipynb", {}, "kaggle"), ("b.py", {"lr": 0.1}, None),
                                                           ("c.ipynb", {}, "tuples"))
    with pytest.raises(SystemExit):
        _parser("evaluate").parse_args(["--submission", "a.ipynb", "--batches", "dicts"])
    with pytest.raises(ValueError, match="unknown batch format 'dicts'"):
        EvalConfig(batches="dicts")


def test_the_api_takes_a_notebook_and_its_batch_format():
    assert _submission_specs(["a.ipynb", ("b.py", {"lr": 1}), ("c.ipynb", {}, "kaggle")]) == (
        ("a.ipynb", {}, None), ("b.py", {"lr": 1}, None), ("c.ipynb", {}, "kaggle"))
    assert _api_config((), {"batches": "kaggle"}).batches == "kaggle"


def test_package_takes_a_notebook(tmp_path, capsys):
    assert package(["--submission", write_notebook(tmp_path / "sample.ipynb", SAMPLE), "--batches", "tuples",
                    "--out", str(tmp_path / "dist")]) == 0
    assert "sample.ipynb: kept cell 3 (imports, DEVICE)" in capsys.readouterr().out
    built = read_notebook(tmp_path / "dist" / "submission.ipynb")
    assert built.batches == "tuples" and built.options == ()
    cells = [cell.source for cell in nbformat.read(str(tmp_path / "dist" / "submission.ipynb"), as_version=4).cells]
    inlined = next(text for text in cells if text.startswith("# ---- inlined from sample.ipynb"))
    assert UNLEARNING.split("\n")[0] in inlined and "range(512)" not in inlined and "!pip" not in inlined
    assert package(["--submission", write_notebook(tmp_path / "broken.ipynb", [("code", "import torch")]),
                    "--out", str(tmp_path / "dist")]) == 2
    assert "defines no function `unlearning" in capsys.readouterr().err


# -- scoring notebooks ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def evaluation(cache_dir, original):
    """Digits at N = 2 with the session's original, no methods of its own (the tests hand it theirs)."""
    config = EvalConfig(dataset="digits", num_models=2, cache_dir=str(cache_dir), baseline=False, submissions=(), progress=False,
                        run_timeout=120.0, workers=1)
    evaluation = Evaluation(config, log=lambda *_: None)
    yield evaluation
    evaluation.close()


def runs_folders(evaluation, slug: str) -> set[str]:
    return {path.name for path in (evaluation.cache / "runs").glob(f"digits-{slug}-*")}


@pytest.mark.training
def test_the_runs_key_follows_the_kept_code_and_the_batch_format(evaluation, tmp_path):
    either = replaced(SAMPLE, '            inputs = sample["image"]\n            targets = sample["age_group"]\n',
                      '            inputs, targets = (sample["image"], sample["age_group"]) '
                      'if isinstance(sample, dict) else sample\n')
    path = tmp_path / "either.ipynb"
    write_notebook(path, either)
    dicts = evaluation.runs(method_from_spec(str(path), batches="kaggle"))
    pairs = evaluation.runs(method_from_spec(str(path), batches="tuples"))
    assert len(runs_folders(evaluation, "either")) == 2   # one key per batch format ...
    for name in ("forget_conf", "retain_acc", "test_acc"):   # ... for the same figures: the same tensors, in order
        np.testing.assert_array_equal(dicts[name], pairs[name])
    write_notebook(path, replaced(either, "range(512)", "range(8)"))   # a left-out cell edited
    evaluation.runs(method_from_spec(str(path)))   # the setting's own format, tuples: the cached runs
    assert len(runs_folders(evaluation, "either")) == 2


@pytest.mark.training
def test_a_packaged_notebook_scores_back_like_its_file_with_its_options(evaluation, tmp_path, capsys):
    assert package(["--submission", str(ROOT / "submission" / "unlearning.py"), "--option", "variant=seed",
                    "--out", str(tmp_path)]) == 0
    notebook = method_from_spec(str(tmp_path / "submission.ipynb"), log=print)
    said = capsys.readouterr().out
    assert "left out" in said and "`if os.path.exists(os.path.join(INPUT_ROOT" in said
    assert notebook.option_dict == {"variant": "seed"} and notebook.batches == "kaggle"
    assert notebook.name == "submission[variant=seed]"
    from_file = evaluation.runs(method_from_spec(str(ROOT / "submission" / "unlearning.py"), {"variant": "seed"}))
    from_notebook = evaluation.runs(notebook)
    assert set(from_file) == set(from_notebook)
    for name, values in from_file.items():
        if name != "seconds":
            np.testing.assert_array_equal(values, from_notebook[name], err_msg=name)
    plain = method_from_spec(str(tmp_path / "submission.ipynb"), {"variant": "submitted"}, batches="tuples")
    assert plain.option_dict == {"variant": "submitted"} and plain.batches == "tuples"   # what is given wins


@pytest.mark.training
@pytest.mark.slow
def test_the_organisers_sample_scores_unchanged_like_the_baseline(tmp_path, cache_dir, capsys):
    """The sample notebook, driver cells included, with one command; run beside a copy given pair batches."""
    sample = write_notebook(tmp_path / "sample.ipynb", SAMPLE)
    shutil.copy(sample, tmp_path / "as_pairs.ipynb")
    code = main(["--submission", sample, "--batches", "kaggle", "--submission", str(tmp_path / "as_pairs.ipynb"),
                 "--num-models", str(N), "--dataset", "digits", "--cache-dir", str(cache_dir), "--output-dir",
                 str(tmp_path), "--run-name", "run", "--quiet", "--workers", "1", "--attack-models", "2",
                 "--warn-only"])
    said = capsys.readouterr()
    assert code == 2   # the copy fails, named, and the others are scored
    assert "sample.ipynb: kept cell 3 (imports, DEVICE)" in said.out
    assert ("SUBMISSION ERROR: as_pairs failed on model 0: unlearning() raised TypeError: this batch is an "
            "[inputs, targets] pair (batch format 'tuples')") in said.err and "`--batches kaggle`" in said.err
    rows = pd.read_csv(tmp_path / "run" / "summary.csv").set_index("method")
    assert "as_pairs" not in rows.index
    figures = ["final_score", "forget_quality", "retain_acc", "forget_acc", "test_acc"]
    pd.testing.assert_series_equal(rows.loc["sample", figures], rows.loc["baseline", figures], check_names=False)
    asked = {m["name"]: m for m in json.loads((tmp_path / "run" / "results.json").read_text())["methods_asked"]}
    assert asked["sample"]["kind"] == "notebook" and asked["sample"]["batches"] == "kaggle"
    assert asked["baseline"]["batches"] == "tuples"
