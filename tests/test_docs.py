"""The documentation: generated reference pages match the code, the site builds strictly, and
the words are for users."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_generated_pages_match_the_code() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/docs_reference.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_site_builds_with_no_broken_link_or_missing_page(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "reference/cli/index.html").is_file()


def test_the_readme_is_short_and_the_words_are_for_users() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    texts = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    texts += [
        p
        for folder in ("tasks", "flows", "benchmarks", "scripts")
        for p in (ROOT / folder).rglob("*.py")
    ]
    internal = re.compile(r"issue [0-9]+|\blent\b", re.IGNORECASE)
    found = [str(p.relative_to(ROOT)) for p in texts if internal.search(p.read_text())]
    assert not found


def test_the_cli_prints_its_version() -> None:
    from importlib.metadata import version

    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        done.returncode == 0
        and done.stdout.strip() == f"audio-embeddings {version('audio-embeddings')}"
    )
