"""Where audio lives. A source lists audio items (with a change marker) and reads their bytes.

``LocalSource`` is a folder on disk, ``BlobSource`` a container (and prefix) in Azure Blob
Storage; both behind the same two methods. Which one a URI names is decided in
``tasks.resources``. An item's identity is its URI (``file:///abs/path`` or
``az://account/container/path``); its document key is a fixed-length digest of that URI, safe as
an Azure AI Search key.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from tasks.errors import UserError
from tasks.storage.blob_address import BlobAddress

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

    from tasks.settings import BlobSettings

#: Extensions listed by default (lower case, no dot): what libsndfile decodes.
AUDIO_EXTENSIONS = frozenset(
    {"wav", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "au", "w64", "caf"}
)


def document_key(uri: str) -> str:
    """The key of an audio item: sha256 of its URI in hex (64 chars of [0-9a-f])."""
    return hashlib.sha256(uri.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AudioItem:
    """One audio file as listed: identity, location in the source, and change marker."""

    uri: str
    path: str
    etag: str
    size_bytes: int
    last_modified: datetime
    metadata: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return document_key(self.uri)


class AudioSource(Protocol):
    """What the pipeline needs of a place that holds audio."""

    uri: str

    @property
    def item_uri_prefix(self) -> str:
        """Every item URI of this source starts with this (scopes deletions to the source)."""
        ...

    def list_items(self) -> Iterator[AudioItem]:
        """Every audio item, in a stable order."""
        ...

    def read_bytes(self, item: AudioItem) -> bytes:
        """The item's content."""
        ...

    def open_file(self, item: AudioItem) -> AbstractContextManager[BinaryIO]:
        """The item's content as a seekable binary file (for files too large to hold in memory:
        a local file is opened, a blob downloaded to a temporary file)."""
        ...


class SourceNotFoundError(UserError, FileNotFoundError):
    """The configured source does not exist."""


class InvalidSourceError(UserError, ValueError):
    """A source URI that names no place audio can live (unknown scheme, malformed az:// URL)."""


class SourceReadError(OSError):
    """An item could not be read (gone, changed since listing, or the service kept failing).

    Not a user error: the next run tries the item again.
    """


def has_audio_extension(name: str, extensions: frozenset[str]) -> bool:
    """Whether a file name ends in one of ``extensions`` (lower case, no dot)."""
    return "." in name and name.rsplit(".", 1)[-1].lower() in extensions


class LocalSource:
    """A folder of audio files (recursively). The etag is ``<size>-<mtime_ns>``."""

    def __init__(self, root: Path, extensions: frozenset[str] = AUDIO_EXTENSIONS) -> None:
        self.root = root.expanduser().resolve()
        if not self.root.is_dir():
            raise SourceNotFoundError(f"audio folder not found: {self.root}")
        self.extensions = frozenset(e.lower().lstrip(".") for e in extensions)
        self.uri = self.root.as_uri()

    @property
    def item_uri_prefix(self) -> str:
        return self.uri + "/"

    def list_items(self) -> Iterator[AudioItem]:
        for directory, subdirectories, files in os.walk(self.root):
            subdirectories.sort()
            for name in sorted(files):
                if not has_audio_extension(name, self.extensions) or name.startswith("."):
                    continue
                path = Path(directory, name)
                stat = path.stat()
                yield AudioItem(
                    uri=path.as_uri(),
                    path=path.relative_to(self.root).as_posix(),
                    etag=f"{stat.st_size}-{stat.st_mtime_ns}",
                    size_bytes=stat.st_size,
                    last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
                )

    def read_bytes(self, item: AudioItem) -> bytes:
        return (self.root / item.path).read_bytes()

    def open_file(self, item: AudioItem) -> AbstractContextManager[BinaryIO]:
        return open(self.root / item.path, "rb")


class BlobSource:
    """Blobs of one container under an optional prefix. The etag is the blob's (unquoted).

    Listing streams page by page; a download asks for the exact version that was listed
    (If-Match), so a blob overwritten mid-run is left for the next run rather than mislabelled.
    """

    def __init__(
        self,
        container: ContainerClient,
        settings: BlobSettings,
        prefix: str = "",
        extensions: frozenset[str] = AUDIO_EXTENSIONS,
    ) -> None:
        self.container = container
        self.prefix = prefix
        self.extensions = frozenset(e.lower().lstrip(".") for e in extensions)
        self.settings = settings
        self.account = container.account_name
        self.uri = BlobAddress(container.container_name, prefix).source_uri

    @property
    def item_uri_prefix(self) -> str:
        return self.item_uri(self.prefix)

    def item_uri(self, blob_name: str) -> str:
        return BlobAddress(self.container.container_name, blob_name, self.account).item_uri

    def list_items(self) -> Iterator[AudioItem]:
        from azure.core.exceptions import ResourceNotFoundError

        from tasks.storage.azure import reaching_blob_storage

        blobs = self.container.list_blobs(
            name_starts_with=self.prefix or None, include=["metadata"]
        )
        try:
            with reaching_blob_storage(self.settings):
                for blob in blobs:
                    if has_audio_extension(blob.name, self.extensions):
                        yield self._item(blob)
        except ResourceNotFoundError:
            raise SourceNotFoundError(
                f"container not found: {self.container.container_name} ({self.account})"
            ) from None

    def item(self, blob_name: str) -> AudioItem:
        """The current properties of one blob, as an item (for event-driven ingestion)."""
        from azure.core.exceptions import AzureError

        try:
            return self._item(self.container.get_blob_client(blob_name).get_blob_properties())
        except AzureError as error:
            raise SourceReadError(self._describe(blob_name, error)) from None

    def read_bytes(self, item: AudioItem) -> bytes:
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError

        try:
            downloader = self.container.download_blob(
                item.path, etag=f'"{item.etag}"', match_condition=MatchConditions.IfNotModified
            )
            return downloader.readall()
        except AzureError as error:
            raise SourceReadError(self._describe(item.path, error)) from None

    @contextmanager
    def open_file(self, item: AudioItem) -> Iterator[BinaryIO]:
        """The blob (the version listed) downloaded chunk by chunk to a temporary file, deleted
        on exit: disk, not memory, holds a long recording."""
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError

        with tempfile.TemporaryFile(prefix="audio-embeddings-") as file:
            try:
                downloader = self.container.download_blob(
                    item.path, etag=f'"{item.etag}"', match_condition=MatchConditions.IfNotModified
                )
                downloader.readinto(file)
            except AzureError as error:
                raise SourceReadError(self._describe(item.path, error)) from None
            file.seek(0)
            yield file

    def stream_range(self, blob_name: str, start: int, length: int) -> Iterator[bytes]:
        """Bytes ``start`` .. ``start + length`` of a blob, chunk by chunk (for a player that
        seeks: memory holds a chunk, not the recording)."""
        from azure.core.exceptions import AzureError

        try:
            downloader = self.container.download_blob(blob_name, offset=start, length=length)
            yield from downloader.chunks()
        except AzureError as error:
            raise SourceReadError(self._describe(blob_name, error)) from None

    def _item(self, blob) -> AudioItem:
        return AudioItem(
            uri=self.item_uri(blob.name),
            path=blob.name,
            etag=blob.etag.strip('"'),
            size_bytes=blob.size,
            last_modified=blob.last_modified,
            metadata=dict(blob.metadata or {}),
        )

    def _describe(self, blob_name: str, error: Exception) -> str:
        from tasks.storage.azure import redact

        reason = getattr(error, "reason", None) or type(error).__name__
        status = getattr(error, "status_code", None)
        message = f"{self.item_uri(blob_name)}: {reason}" + (f" (HTTP {status})" if status else "")
        return redact(message, self.settings)


def file_uri_path(uri: str) -> Path:
    """``file:///abs/path`` (percent-encoded, as ``Path.as_uri`` writes it) -> the path."""
    return Path(unquote(urlparse(uri).path))
