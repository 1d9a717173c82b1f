"""The search flow: filters on the LanceDB index."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.ingest import ingest
from flows.search import search

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_search_filters_by_path_prefix(catalogue: Path, stores: dict[str, str]) -> None:
    ingest(source=str(catalogue))
    hits = search(query=str(catalogue / "tones/a440.wav"), top=10, path_prefix="tones/")
    assert {h.path for h in hits} == {"tones/a440.wav", "tones/a220.flac"}


def test_without_a_prefect_api_the_cli_searches_in_process_with_the_flows_answer(
    catalogue: Path, stores: dict[str, str]
) -> None:
    import os
    import subprocess
    import sys

    from flows.search import search_in_process

    ingest(source=str(catalogue))
    query = str(catalogue / "tones/a440.wav")
    by_flow = search(query=query, top=4, segments=True, per_file=2)
    in_process, model = search_in_process(query=query, top=4, segments=True, per_file=2)
    # the flow runs the auto engine (ONNX Runtime on a CPU), the one-shot process torch
    assert [(h.key, h.start_seconds) for h in in_process] == [
        (h.key, h.start_seconds) for h in by_flow
    ]
    assert [h.score for h in in_process] == pytest.approx([h.score for h in by_flow], abs=1e-4)
    assert not model.is_official
    # the command, in a fresh interpreter with no Prefect API: no temporary server, same table
    environment = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "search", query, "--top", "4"],
        env={**environment, "PREFECT_API_URL": ""},
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "NOT the official Cnn14 checkpoint" in " ".join(done.stdout.split())
    assert "temporary server" not in (done.stdout + done.stderr).lower()
    rows = [line.split("│") for line in done.stdout.splitlines() if line.startswith("│")]
    listed = [cells[3].strip() for cells in rows if cells[3].strip()]  # not wrapped label lines
    assert listed == [h.path for h in search(query=query, top=4)]


def test_a_query_may_name_a_catalogue_file_by_path_or_key(
    catalogue: Path, stores: dict[str, str]
) -> None:
    """What a UI run on a remote worker can pass: no file on the worker, the stored vector."""
    from tasks.search.query import QueryNotFoundError

    ingest(source=str(catalogue))
    by_file = search(query=str(catalogue / "noise/white.ogg"), top=3)
    by_path = search(query="noise/white.ogg", top=3)
    by_key = search(query=by_file[0].key, top=3)
    for hits in (by_path, by_key):
        assert [h.path for h in hits] == [h.path for h in by_file]
        assert [h.score for h in hits] == pytest.approx([h.score for h in by_file], abs=1e-4)
    segments = search(query="noise/white.ogg", top=2, segments=True)
    assert segments[0].path == "noise/white.ogg" and segments[0].start_seconds is not None
    with pytest.raises(QueryNotFoundError, match=r"noise/none\.ogg"):
        search(query="noise/none.ogg")


def test_like_these_unlike_those_ranks_by_the_combined_vector_without_the_examples(
    catalogue: Path, stores: dict[str, str]
) -> None:
    import numpy as np

    from tasks.resources import open_catalogue
    from tasks.search.examples import combined_vector
    from tasks.settings import Settings

    ingest(source=str(catalogue))
    files = open_catalogue(Settings())
    hits = search(query="tones/a440.wav", like=["tones/a220.flac"], unlike=["noise/white.ogg"])
    paths = [h.path for h in hits]
    assert sorted(paths) == ["machines/ticker.wav", "sweeps/chirp.mp3"]  # examples left out

    def vector(path: str) -> np.ndarray:
        return files.file_vector(files.find(path).key)

    query = combined_vector(
        np.stack([vector("tones/a440.wav"), vector("tones/a220.flac")]),
        np.stack([vector("noise/white.ogg")]),
    )
    for hit in hits:  # each score is the hit's cosine to the combined vector
        found = vector(hit.path)
        expected = float(found @ query / np.linalg.norm(found) / np.linalg.norm(query))
        assert hit.score == pytest.approx(expected, abs=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    # a local file is audio to embed, not a catalogue file: it is no example to leave out
    local = search(query=str(catalogue / "tones/a220.flac"), like=["tones/a440.wav"])
    assert "tones/a440.wav" not in {h.path for h in local}
    assert "tones/a220.flac" in {h.path for h in local}


def test_a_search_with_nothing_to_sound_like_is_refused(stores: dict[str, str]) -> None:
    from tasks.search.examples import ExamplesError

    with pytest.raises(ExamplesError, match="at least one example"):
        search(unlike=["tones/a440.wav"])
