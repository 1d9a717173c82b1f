"""The maintain flow on an ingested catalogue: a dry run changes nothing, upkeep leaves every
table readable, the index current, and a report in the UI."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.cli import app
from flows.ingest import ingest
from flows.maintain import maintain
from flows.refresh_index import refresh_index
from tasks.audio import samples
from tasks.index.lancedb_index import LanceDBIndex
from tasks.storage.snapshots import SnapshotTable
from tests.flows.cli_runner import QuietCliRunner

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_upkeep_after_several_ingests_keeps_everything_readable(
    catalogue: Path, stores: dict[str, str]
) -> None:
    ingest(source=str(catalogue), shard_size=1)
    samples.write(catalogue / "later/one.wav", samples.chirp(2.0, 16_000), 16_000)
    ingest(source=str(catalogue), refresh_index=False)  # the index lags one version behind
    snapshot = SnapshotTable(stores["snapshot"])
    version, rows = snapshot.version(), snapshot.read().num_rows

    dry = maintain(dry_run=True)
    assert stores["snapshot"] in {t.uri for t in dry}  # no bad input: no quarantine table
    assert snapshot.version() == version and all(t.dry_run for t in dry)

    done = {t.uri: t for t in maintain()}
    upkept = done[stores["snapshot"]]
    assert upkept.checkpoint_version == snapshot.version() and upkept.vacuumed == []
    assert snapshot.read().num_rows == rows
    # the version the index reflects is still there to diff from: the refresh catches up
    assert refresh_index().upserted == 1
    assert LanceDBIndex(stores["index"]).count() == rows
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["table-upkeep"]))
        )
    assert artifacts and "Table upkeep" in artifacts[-1].data


def test_the_maintain_command(catalogue: Path, stores: dict[str, str]) -> None:
    ingest(source=str(catalogue), refresh_index=False)
    result = QuietCliRunner().invoke(app, ["maintain", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would delete 0" in result.output and stores["snapshot"] in result.output
