"""Where audio lives. A source lists audio items (with a change marker) and reads their bytes.

``LocalSource`` is a folder on disk; the Azure Blob source plugs in behind the same two methods.
An item's identity is its URI (``file:///abs/path`` or ``az://account/container/path``); its
document key is a fixed-length digest of that URI, safe as an Azure AI Search key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

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

    @property
    def key(self) -> str:
        return document_key(self.uri)


class AudioSource(Protocol):
    """What the pipeline needs of a place that holds audio."""

    uri: str

    def list_items(self) -> Iterator[AudioItem]:
        """Every audio item, in a stable order."""
        ...

    def read_bytes(self, item: AudioItem) -> bytes:
        """The item's content."""
        ...


class SourceNotFoundError(FileNotFoundError):
    """The configured source does not exist."""


class LocalSource:
    """A folder of audio files (recursively). The etag is ``<size>-<mtime_ns>``."""

    def __init__(self, root: Path, extensions: frozenset[str] = AUDIO_EXTENSIONS) -> None:
        self.root = root.expanduser().resolve()
        if not self.root.is_dir():
            raise SourceNotFoundError(f"audio folder not found: {self.root}")
        self.extensions = frozenset(e.lower().lstrip(".") for e in extensions)
        self.uri = self.root.as_uri()

    def list_items(self) -> Iterator[AudioItem]:
        for directory, subdirectories, files in os.walk(self.root):
            subdirectories.sort()
            for name in sorted(files):
                if name.rsplit(".", 1)[-1].lower() not in self.extensions or name.startswith("."):
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


def open_source(uri: str) -> AudioSource:
    """The source a URI names: a local folder path or ``file://`` URI."""
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return LocalSource(Path(unquote(urlparse(uri).path)))
    if "://" in uri:
        raise ValueError(f"unsupported source URI {uri!r}: use a local folder or file:// URI")
    return LocalSource(Path(uri))
