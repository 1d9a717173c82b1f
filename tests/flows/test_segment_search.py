"""Where in the file: segment search finds a sound planted at a known second of a recording,
one hit per file unless asked, through the flow and the command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.ingest import ingest
from flows.search import search
from tasks.audio import samples

pytestmark = pytest.mark.usefixtures("prefect_server")
RATE = 16_000
BURST_SECONDS = 6.45


def _recordings(root: Path) -> Path:
    """Two 12 s quiet hums; a loud 1 s burst is planted at 6.45 s of one of them, on no
    boundary of windows, pieces or segments; the query is another burst of the same kind."""
    for name, seed in (("field/a.wav", 1), ("field/b.wav", 2)):
        hum = samples.tone(12.0, RATE, 300.0 + 40 * seed, 0.05)
        if name == "field/a.wav":
            start = round(BURST_SECONDS * RATE)
            hum[start : start + RATE] += samples.noise(1.0, RATE, 5, 0.6)
        samples.write(root / name, hum.astype(np.float32), RATE)
    query = root.parent / "query.wav"
    samples.write(query, samples.noise(1.0, RATE, 9, 0.6), RATE)
    return query


def test_segment_search_says_where_the_sound_is(tmp_path: Path, stores: dict[str, str]) -> None:
    query = _recordings(tmp_path / "audio")
    ingest(source=str(tmp_path / "audio"))
    hits = search(query=str(query), top=5, segments=True)
    assert hits[0].path == "field/a.wav"
    assert hits[0].start_seconds in (6.0, 7.0)  # one of the two seconds the burst spans
    assert len({h.path for h in hits}) == len(hits) == 2  # one hit per file by default
    several = search(query=str(query), top=4, segments=True, per_file=3)
    counts = [[h.path for h in several].count(p) for p in ("field/a.wav", "field/b.wav")]
    assert max(counts) > 1 and max(counts) <= 3 and sum(counts) == 4  # up to 3 hits a file
    assert several[0].start_seconds in (6.0, 7.0) and several[0].score >= several[1].score


def test_the_command_prints_file_from_and_to(
    tmp_path: Path, stores: dict[str, str], checkpoint: Path
) -> None:
    query = _recordings(tmp_path / "audio")
    ingest(source=str(tmp_path / "audio"))
    result = CliRunner().invoke(app, ["search", str(query), "--segments", "--top", "1"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "field/a.wav" in line)
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[4:6] in (["6.0", "7.0"], ["7.0", "8.0"])  # from, to: where the burst is
