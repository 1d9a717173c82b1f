"""What an ingest run has to do: compare a listing with the latest snapshot (by etag) and the
quarantine, and find new or changed files to embed and keys to delete.

Flat in the catalogue size: the listing streams into 16 spill files on local disk by the first
hex digit of the key (the snapshot's partitions are the first two), then each group is joined
with the snapshot rows of its 16 partitions in Arrow: no Python object per catalogued file, and
memory for one sixteenth of the catalogue at a time. The files to embed are written, sorted by
key, to a manifest the flow reads shard by shard; sorted so that consecutive shards and the
commits that follow touch few partitions.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from tasks.model.constants import EMBEDDING_METHOD
from tasks.storage.blob_address import BlobAddress, BlobAddressError
from tasks.storage.quarantine import QuarantineTable
from tasks.storage.snapshots import SNAPSHOT_SCHEMA, SnapshotTable
from tasks.storage.sources import (
    AudioItem,
    AudioSource,
    BlobSource,
    InvalidSourceError,
    SourceReadError,
)

#: A listed item, as the plan's spill files and manifest hold it (the snapshot's own types).
ITEM_SCHEMA = pa.schema(
    [
        SNAPSHOT_SCHEMA.field("key"),
        pa.field("uri", pa.string()),
        *(
            SNAPSHOT_SCHEMA.field(name)
            for name in ("path", "etag", "size_bytes", "last_modified", "metadata")
        ),
    ]
)
_HEX = "0123456789abcdef"
_SPILL_BATCH = 20_000  # listed items per Arrow batch written to the spill files
_MANIFEST_BATCH = 1_024


@dataclass
class ChangePlan:
    """What an ingest run has to do: counts, and the files to embed and keys to delete, kept
    in ``folder`` (removed by ``discard`` or with the plan object) and read back in batches."""

    folder: Path
    to_embed: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped_quarantined: int = 0
    #: unchanged files by the run that committed them (a resumed run's files show up here)
    unchanged_by_run: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._remove_folder = weakref.finalize(self, shutil.rmtree, self.folder, ignore_errors=True)

    def discard(self) -> None:
        """Remove the folder now (the counts stay): a long-lived worker may hold the plan
        object long after its run, and a process that exits abruptly never collects it."""
        self._remove_folder()

    @property
    def listed(self) -> int:
        return self.to_embed + self.unchanged + self.skipped_quarantined

    def shards(self, size: int) -> Iterator[list[AudioItem]]:
        """The files to embed, ``size`` at a time, in key order."""
        shard: list[AudioItem] = []
        for batch in _read_batches(self.folder / "to_embed.arrow"):
            for row in batch.to_pylist():
                shard.append(
                    AudioItem(
                        row["uri"],
                        row["path"],
                        row["etag"],
                        row["size_bytes"],
                        row["last_modified"],
                        dict(row["metadata"] or []),
                    )
                )
                if len(shard) == size:
                    yield shard
                    shard = []
        if shard:
            yield shard

    def items(self) -> list[AudioItem]:
        """Every file to embed at once (small plans, tests)."""
        return [item for shard in self.shards(_MANIFEST_BATCH) for item in shard]

    def deleted_key_batches(self, size: int) -> Iterator[list[str]]:
        """The keys to delete, ``size`` at a time."""
        keys: list[str] = []
        for batch in _read_batches(self.folder / "deleted.arrow"):
            keys.extend(batch.column("key").to_pylist())
            while len(keys) >= size:
                yield keys[:size]
                keys = keys[size:]
        if keys:
            yield keys

    def deleted_keys(self) -> list[str]:
        """Every key to delete at once, sorted (small plans, tests)."""
        return sorted(k for batch in self.deleted_key_batches(_MANIFEST_BATCH) for k in batch)


#: Plan folders are named ``<prefix><pid namespace>-<pid>-<random>`` under the temp folder.
PLAN_FOLDER_PREFIX = "audio-embeddings-plan-"


def new_plan_folder() -> Path:
    """A new folder for a plan, named after this process, once the folders of plans whose
    process no longer runs are removed: a run killed mid-way (SIGKILL, a lost node) removes
    nothing, and at a million files a plan's manifest is hundreds of MB."""
    namespace = _pid_namespace()
    if namespace is not None:
        for folder in Path(tempfile.gettempdir()).glob(f"{PLAN_FOLDER_PREFIX}{namespace}-*"):
            pid = folder.name.removeprefix(f"{PLAN_FOLDER_PREFIX}{namespace}-").split("-")[0]
            if pid.isdigit() and not _process_runs(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
    prefix = f"{PLAN_FOLDER_PREFIX}{namespace or 'x'}-{os.getpid()}-"
    return Path(tempfile.mkdtemp(prefix=prefix))


def _pid_namespace() -> str | None:
    """This process's PID namespace (Linux), so that only the plans of processes this one can
    see are judged by their PIDs (containers may share a temp folder); None elsewhere."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return None


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def plan_changes(
    listing: Iterable[AudioItem],
    snapshot: SnapshotTable,
    quarantine: QuarantineTable,
    uri_prefix: str = "",
    complete_listing: bool = True,
) -> ChangePlan:
    """New or changed items (by etag) to embed, and keys no longer listed to delete.

    An item that was quarantined with the same etag is not retried: re-running on unchanged
    input changes nothing. A new upload (new etag) of a quarantined file is tried again.
    Deletions are only inferred from a ``complete_listing`` (a whole source, not a few blobs),
    among the snapshot rows whose URI starts with ``uri_prefix`` (the source's own rows).
    """
    plan = ChangePlan(new_plan_folder())
    groups = _spill_by_group(listing, plan.folder)
    quarantined = quarantine.markers()
    latest = snapshot.latest()
    # rows of another embedding method, or without segments (from before either was stored),
    # count as changed: embedded again, once
    columns = ["key", "etag", "run_id", "source_uri"]
    for marker in ("num_segments", "embedding_method"):
        if latest.data is None or marker in latest.data.schema.names:
            columns.append(marker)
    with (
        _Writer(plan.folder / "to_embed.arrow", ITEM_SCHEMA) as to_embed,
        _Writer(plan.folder / "deleted.arrow", pa.schema([("key", pa.string())])) as deleted,
    ):
        for group in _HEX:
            if group not in groups and not complete_listing:
                continue
            spill = plan.folder / f"listed-{group}.arrow"
            listed = _read_all(spill) if group in groups else ITEM_SCHEMA.empty_table()
            current = latest.rows_under([group + digit for digit in _HEX], columns)
            if uri_prefix:
                current = current.filter(pc.starts_with(current["source_uri"], uri_prefix))
            _plan_group(plan, listed, current, quarantined, to_embed, deleted, complete_listing)
            del listed
            spill.unlink(missing_ok=True)
    return plan


def _plan_group(
    plan: ChangePlan,
    listed: pa.Table,
    current: pa.Table,
    quarantined: pa.Table,
    to_embed: _Writer,
    deleted: _Writer,
    complete_listing: bool,
) -> None:
    """One key group: count the unchanged, write what to embed and what to delete."""
    listed_markers = listed.select(["key", "etag"])
    if {"num_segments", "embedding_method"} <= set(current.column_names):
        method = pc.cast(current["embedding_method"], pa.string())
        current_method = pc.fill_null(pc.equal(method, EMBEDDING_METHOD), False)
        embedded = current.filter(pc.and_(current_method, pc.is_valid(current["num_segments"])))
    else:
        embedded = current.slice(0, 0)
    unchanged = listed_markers.join(
        embedded.select(["key", "etag", "run_id"]), ["key", "etag"], join_type="inner"
    )
    plan.unchanged += unchanged.num_rows
    for row in unchanged.group_by("run_id").aggregate([("key", "count")]).to_pylist():
        run = row["run_id"] or ""
        plan.unchanged_by_run[run] = plan.unchanged_by_run.get(run, 0) + row["key_count"]
    changed = listed_markers.join(
        embedded.select(["key", "etag"]), ["key", "etag"], join_type="left anti"
    )
    wanted = changed.join(quarantined, ["key", "etag"], join_type="left anti")
    plan.skipped_quarantined += changed.num_rows - wanted.num_rows
    rows = listed.filter(pc.is_in(listed["key"], wanted["key"])).sort_by("key")
    to_embed.write(rows)
    plan.to_embed += rows.num_rows
    if complete_listing:
        gone = current.select(["key"]).join(listed.select(["key"]), "key", join_type="left anti")
        deleted.write(gone.sort_by("key"))
        plan.deleted += gone.num_rows


def _spill_by_group(listing: Iterable[AudioItem], folder: Path) -> set[str]:
    """Stream the listing into one Arrow file per key group; return the groups written."""
    writers: dict[str, pa.ipc.RecordBatchStreamWriter] = {}
    columns: dict[str, list] = {name: [] for name in ITEM_SCHEMA.names}

    def flush() -> None:
        batch = pa.RecordBatch.from_pydict(columns, schema=ITEM_SCHEMA)
        groups = pc.utf8_slice_codeunits(batch.column("key"), 0, 1)
        for group in pc.unique(groups).to_pylist():
            if group not in writers:
                writers[group] = pa.ipc.new_stream(folder / f"listed-{group}.arrow", ITEM_SCHEMA)
            writers[group].write_batch(batch.filter(pc.equal(groups, group)))
        for values in columns.values():
            values.clear()

    for item in listing:
        for name, value in (
            ("key", item.key),
            ("uri", item.uri),
            ("path", item.path),
            ("etag", item.etag),
            ("size_bytes", item.size_bytes),
            ("last_modified", item.last_modified),
            ("metadata", sorted(item.metadata.items())),
        ):
            columns[name].append(value)
        if len(columns["key"]) == _SPILL_BATCH:
            flush()
    if columns["key"]:
        flush()
    for writer in writers.values():
        writer.close()
    return set(writers)


class _Writer:
    """An Arrow IPC stream file written batch by batch (created even when nothing is written)."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema

    def __enter__(self) -> _Writer:
        self._writer = pa.ipc.new_stream(self.path, self.schema)
        return self

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table.select(self.schema.names), _MANIFEST_BATCH)

    def __exit__(self, *exc: object) -> None:
        self._writer.close()


def _read_batches(path: Path) -> Iterator[pa.RecordBatch]:
    with pa.memory_map(str(path)) as source:
        yield from pa.ipc.open_stream(source)


def _read_all(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


def plan_source(
    source: AudioSource, snapshot: SnapshotTable, quarantine: QuarantineTable
) -> ChangePlan:
    """The plan for a whole source: its listing against the snapshot rows it owns."""
    return plan_changes(source.list_items(), snapshot, quarantine, source.item_uri_prefix)


def container_of(blob_urls: Sequence[str]) -> tuple[str, str]:
    """(account, ``az://container/``) of a batch of blob URLs, which must share one container."""
    containers = {(a.account, a.container) for a in map(_blob_address, blob_urls)}
    if len(containers) != 1:
        raise InvalidSourceError(f"one container per batch expected, got {sorted(containers)}")
    ((account, container),) = containers
    return str(account), BlobAddress(container).source_uri


def _blob_address(url: str) -> BlobAddress:
    try:
        return BlobAddress.from_url(url)
    except BlobAddressError as error:
        raise InvalidSourceError(str(error)) from None


def plan_blobs(
    blob_urls: Sequence[str],
    source: BlobSource,
    snapshot: SnapshotTable,
    quarantine: QuarantineTable,
) -> tuple[ChangePlan, list[str]]:
    """The plan for an explicit list of blobs (from events): new or changed only, and the
    reasons for blobs skipped because they are gone by now.

    Nothing is deleted: a partial list says nothing about blobs that are not in it (deletions
    reach the snapshot with the next full ingest).
    """
    account, _ = container_of(blob_urls)
    if source.account != account:
        raise InvalidSourceError(
            f"blobs of account {account!r} but the configured account is {source.account!r}"
        )
    items, skipped = [], []
    for url in dict.fromkeys(blob_urls):  # events may repeat a blob
        try:
            items.append(source.item(_blob_address(url).path))
        except SourceReadError as error:
            skipped.append(str(error))
    plan = plan_changes(items, snapshot, quarantine, complete_listing=False)
    return plan, skipped
