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
