"""The product speaks of the product: no tracked text file narrates how it was made.

Code, docstrings, tests and docs say what is and why; the history (who measured what when, which round of work
changed what, commit hashes, issue numbers) lives in the commit messages. Each pattern below is a kind of diary line;
``ALLOWED`` lists the reviewed ordinary uses of the same words (a pytest session, a process session, a user's own
helper module, hashes that are test vectors), each with the file it may occur in.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

DIARY = {
    "a work session": r"\b(?:this|that|last|next|earlier|previous|the same|another|a helper) session\b|\bsessions?' ",
    "a session in prose": r"\bsession\b",
    "a round of work": r"\b(?:this|last|the previous|next|earlier) round\b|\bround of work\b",
    "a stop of work": r"\bthis stop\b",
    "helpers at work": r"\bhelper(?:s|'s|s')? (?:session|sessions|process|processes|test runs|tests|jobs|ran)\b",
    "a folder outside the repository": r"\.\./shared|shared/REFERENCE",
    "an issue number": r"\bissue #?\d+|\(#\d+\)|\B#\d\d\b",
    "a commit hash": r"(?<![.\d])\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b",
    "a date and time of work": r"\b20\d\d-[01]\d-[0-3]\d(?:,? \d\d?:\d\d|T\d\d:\d\d)",
    "a date of work": r"\b20\d\d-1[0-2]-[0-3]\d\b",
    "unfinished work": r"started but not finished|not finished for|TODO: re-?run|for lack of (?:CPU )?time|we measured (?:yesterday|today)",
    "a person at work": r"\bthe lead\b|\bother engineers\b",
}

# (file, a regular expression the whole line must match somewhere, why it is ordinary)
ALLOWED = [
    ("tests/conftest.py", r'scope="session"|test session|the session\'s', "pytest's session-scoped fixtures"),
    ("tests/test_hostile.py", r'scope="session"|Ray test of the session', "a pytest session fixture"),
    ("tests/test_ray.py", r"Ray instance of the session", "the pytest session's Ray instance"),
    ("tests/test_api.py", r"session cache", "the pytest session's cache"),
    ("tests/test_isolation.py", r"session of their own|the session's N = 8", "a process session (setsid); the pytest session"),
    ("tests/test_notebook_submission.py", r"the session's original", "the pytest session's original model"),
    ("mock_evaluator/engine/isolation.py", r"session", "a process session (setsid)"),
    ("mock_evaluator/engine/worker.py", r"session", "a process session (setsid)"),
    ("mock_evaluator/engine/executors.py", r"session", "a process session (setsid)"),
    ("docs/trust-model.md", r"a new session", "a process session (setsid)"),
    ("benchmarks/results/leaderboard-mnist-groups-n512-seed0.csv", r".", "figures (digit strings), not hashes"),
    ("tests/test_metric.py", r"-103\.61632918473207", "a float literal"),
    ("docs/methods.md", r"discussion/|\| \[4\d{5}\]", "Kaggle discussion ids of the write-ups"),
]

TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".sh", ".csv", ".json", ".ipynb", ""}
SELF = "tests/test_product_text.py"


def tracked_text_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [p for p in out.splitlines() if Path(p).suffix in TEXT_SUFFIXES and p != SELF and (ROOT / p).is_file()]


def diary_lines(path: str, text: str) -> list[str]:
    """Every line of ``text`` that matches a diary pattern and no allowance for ``path``."""
    allowed = [re.compile(line) for file, line, _ in ALLOWED if file == path]
    hits = []
    for number, line in enumerate(text.splitlines(), 1):
        for name, pattern in DIARY.items():
            if re.search(pattern, line, re.IGNORECASE if name != "a commit hash" else 0) \
                    and not any(a.search(line) for a in allowed):
                hits.append(f"{path}:{number}: {name}: {line.strip()[:120]}")
                break
    return hits


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the git checkout (git ls-files)")
def test_no_tracked_text_file_narrates_how_it_was_made():
    hits = []
    for path in tracked_text_files():
        try:
            text = (ROOT / path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        hits += diary_lines(path, text)
    assert not hits, ("diary text in the product (say what is and why; history goes in commit messages):\n"
                      + "\n".join(hits))


@pytest.mark.parametrize("line", [
    "Measured in this session on 2 cores.",
    "The previous round's figure was 0.19.",
    "Source: ../shared/REFERENCE_METHODS.md",
    "Isolation (issue #20): a method cannot ...",
    "main at 747ffd6, 2 workers",
    "measured 2026-12-03 14:18 on an idle machine",
    "a search at x10 was started but not finished",
    "while two helper sessions ran their tests",
])
def test_the_patterns_catch_diary_lines(line):
    assert diary_lines("docs/x.md", line)


@pytest.mark.parametrize("line", [
    "A call is a process group of its own, in a new session.",
    "score 0.0009765625 at N = 512",
    "private leaderboard #3 (score 0.0785)",
    "the cache key is a SHA-256 of the job",
    f'"weight_decay": {2 ** -0.5 * 1e-4!r},',   # a float in scientific notation: 7.07...e-05
])
def test_ordinary_lines_pass(line):
    assert not diary_lines("docs/x.md", line) or "session" in line


def test_allowances_apply_only_to_their_file():
    line = '@pytest.fixture(scope="session")'
    assert not diary_lines("tests/conftest.py", line)
    assert diary_lines("tests/test_x.py", line)
    assert sys.version_info >= (3, 8)
