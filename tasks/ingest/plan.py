"""What an ingest run has to do: compare a listing with the latest snapshot (by etag) and the
quarantine, and find new or changed files to embed and keys to delete."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tasks.events.blob import parse_blob_url
from tasks.storage.quarantine import QuarantineTable
from tasks.storage.snapshots import SnapshotTable
from tasks.storage.sources import (
    AudioItem,
    AudioSource,
    BlobSource,
    InvalidSourceError,
    SourceReadError,
)


@dataclass
class ChangePlan:
    """What an ingest run has to do, from a listing and the current snapshot."""

    to_embed: list[AudioItem] = field(default_factory=list)
    deleted_keys: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped_quarantined: int = 0


def plan_changes(
    listing: Iterable[AudioItem],
    current_etags: dict[str, str],
    quarantined: set[tuple[str, str]],
    complete_listing: bool = True,
) -> ChangePlan:
    """New or changed items (by etag) to embed, and keys no longer listed to delete.

    An item that was quarantined with the same etag is not retried: re-running on unchanged
    input changes nothing. A new upload (new etag) of a quarantined file is tried again.
    Deletions are only inferred from a ``complete_listing`` (a whole source, not a few blobs).
    """
    plan = ChangePlan()
    seen: set[str] = set()
    for item in listing:
        key = item.key
        seen.add(key)
        if current_etags.get(key) == item.etag:
            plan.unchanged += 1
        elif (key, item.etag) in quarantined:
            plan.skipped_quarantined += 1
        else:
            plan.to_embed.append(item)
    if complete_listing:
        plan.deleted_keys = sorted(set(current_etags) - seen)
    return plan


def plan_source(
    source: AudioSource, snapshot: SnapshotTable, quarantine: QuarantineTable
) -> ChangePlan:
    """The plan for a whole source: its listing against the snapshot rows it owns."""
    return plan_changes(
        source.list_items(),
        snapshot.current_etags(source.item_uri_prefix),
        quarantine.quarantined(),
    )


def container_of(blob_urls: Sequence[str]) -> tuple[str, str]:
    """(account, ``az://container/``) of a batch of blob URLs, which must share one container."""
    try:
        containers = {parse_blob_url(url)[:2] for url in blob_urls}
    except ValueError as error:
        raise InvalidSourceError(str(error)) from None
    if len(containers) != 1:
        raise InvalidSourceError(f"one container per batch expected, got {sorted(containers)}")
    ((account, container),) = containers
    return account, f"az://{container}/"


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
            items.append(source.item(parse_blob_url(url)[2]))
        except SourceReadError as error:
            skipped.append(str(error))
    plan = plan_changes(
        items, snapshot.current_etags(), quarantine.quarantined(), complete_listing=False
    )
    return plan, skipped
