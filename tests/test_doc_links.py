"""Every relative link of the README, the docs and the benchmark figures page points at a file the repository tracks
(anchors are not checked: a page may be restructured without breaking its links' targets)."""

from __future__ import annotations

import re
import sys
import subprocess
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def tracked_files() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.splitlines())


def pages(tracked: set[str]) -> list[str]:
    return sorted(p for p in tracked
                  if p in ("README.md", "benchmarks/RESULTS.md") or (p.startswith("docs/") and p.endswith(".md")))


def relative_targets(page: str) -> list[str]:
    """The file part of every relative link on ``page``, as a path from the repository root."""
    text = re.sub(r"```.*?```", "", (ROOT / page).read_text(encoding="utf-8"), flags=re.S)
    targets = []
    for link in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", link) or link.startswith("#"):
            continue                                          # a URL or an anchor on the same page
        file_part = link.split("#", 1)[0]
        parts = []
        for part in (PurePosixPath(page).parent / file_part).parts:
            if part == "..":
                parts = parts[:-1]
            elif part != ".":
                parts.append(part)
        targets.append("/".join(parts))
    return targets


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the git checkout (git ls-files)")
def test_every_relative_link_resolves_to_a_tracked_file():
    tracked = tracked_files()
    folders = {str(PurePosixPath(p).parent) for p in tracked}
    broken = [f"{page}: {target}" for page in pages(tracked) for target in relative_targets(page)
              if target not in tracked and target not in folders]
    assert not broken, "links to files the repository does not track:\n" + "\n".join(broken)


def test_the_link_reader_finds_relative_links_and_skips_urls_and_anchors(tmp_path, monkeypatch):
    page = "docs/x.md"
    (tmp_path / "docs").mkdir()
    (tmp_path / page).write_text("[a](../README.md#top) ![f](../b/c.png) [u](https://x.org/y.md) [s](#here)\n"
                                 "```\n[in code](nowhere.md)\n```\n[m](methods.md)\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert relative_targets(page) == ["README.md", "b/c.png", "docs/methods.md"]
