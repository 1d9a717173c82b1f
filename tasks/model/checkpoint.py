"""Find, download and fingerprint the Cnn14 checkpoint file.

Resolution order, first hit wins:
1. an explicit path (``AUDIO_EMBEDDINGS_CHECKPOINT_PATH`` or ``--checkpoint``);
2. ``<panns_data_dir>/Cnn14_mAP=0.431.pth``, where panns-inference itself keeps it;
3. a one-time download of the official file (from Zenodo, or the ``checkpoint_url`` mirror;
   progress bar, written to a temporary file, checksum verified, then renamed into place),
   unless downloads are disabled.
Nothing found offline raises ``CheckpointNotFoundError`` naming every way to supply the file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tqdm import tqdm

from tasks.errors import UserError
from tasks.model.constants import CHECKPOINT_FILENAME, OFFICIAL_SHA256
from tasks.settings import ModelSettings


class CheckpointError(UserError):
    """The checkpoint cannot be used: not found, not fetched, or not a Cnn14 checkpoint."""


class CheckpointNotFoundError(CheckpointError):
    """No checkpoint could be found or fetched."""


class ChecksumMismatchError(CheckpointError):
    """A downloaded file did not hash to the expected value; nothing was kept."""


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """A checkpoint file on disk, where it came from, and whether it is the official one."""

    path: Path
    origin: str
    sha256: str

    @property
    def is_official(self) -> bool:
        return self.sha256 == OFFICIAL_SHA256

    @property
    def warning(self) -> str | None:
        """What to tell the user when this is not the official checkpoint."""
        if self.is_official:
            return None
        return (
            f"Checkpoint {self.path} (sha256 {self.sha256[:12]}…) is NOT the official Cnn14 "
            "checkpoint: embeddings and labels carry no meaning beyond this test."
        )

    @property
    def note(self) -> str:
        """One line for a run's report: which model made its results."""
        if self.is_official:
            return f"Model: official Cnn14 checkpoint ({self.origin})."
        return (
            f"Model: {self.path}: NOT the official Cnn14 checkpoint: embeddings, scores and "
            "labels carry no meaning."
        )


def resolve_checkpoint(settings: ModelSettings) -> ResolvedCheckpoint:
    """Return the checkpoint to load, following the resolution order in the module docstring."""
    if settings.checkpoint_path is not None:
        path = settings.checkpoint_path.expanduser()
        if not path.is_file():
            raise CheckpointNotFoundError(
                f"The checkpoint given by AUDIO_EMBEDDINGS_CHECKPOINT_PATH / --checkpoint does not "
                f"exist: {path}"
            )
        return ResolvedCheckpoint(path, "explicit path", file_sha256(path))
    cached = settings.panns_data_dir.expanduser() / CHECKPOINT_FILENAME
    if cached.is_file():
        return ResolvedCheckpoint(
            cached, f"panns data folder ({cached.parent})", file_sha256(cached)
        )
    if settings.allow_download:
        try:
            download(settings.checkpoint_url, cached, OFFICIAL_SHA256)
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            raise CheckpointNotFoundError(
                _how_to_supply(cached, settings.checkpoint_url, f"the download failed: {error}")
            ) from None
        return ResolvedCheckpoint(
            cached,
            f"downloaded from {_without_query(settings.checkpoint_url)}",
            file_sha256(cached),
        )
    raise CheckpointNotFoundError(
        _how_to_supply(cached, settings.checkpoint_url, "downloads are disabled")
    )


def download(url: str, destination: Path, expected_sha256: str, timeout_s: float = 60.0) -> Path:
    """Stream ``url`` to ``destination`` atomically, keeping it only if its sha256 matches."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, partial = tempfile.mkstemp(dir=destination.parent, prefix=destination.name + ".")
    try:
        with (
            os.fdopen(handle, "wb") as out,
            urllib.request.urlopen(url, timeout=timeout_s) as response,
        ):
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=destination.name) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != expected_sha256:
            raise ChecksumMismatchError(
                f"{_without_query(url)} downloaded with sha256 {digest.hexdigest()}, expected "
                f"{expected_sha256}; the file was discarded (is AUDIO_EMBEDDINGS_CHECKPOINT_URL "
                "the official Cnn14_mAP=0.431.pth?)"
            )
        os.replace(partial, destination)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return destination


def file_sha256(path: Path) -> str:
    """The sha256 of a file, cached per (path, size, mtime) since checkpoints are 327 MB."""
    stat = path.stat()
    return _sha256_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _without_query(url: str) -> str:
    """A URL without its query string, which may hold a SAS token."""
    return url.split("?", 1)[0]


def _how_to_supply(cached: Path, url: str, why: str) -> str:
    return (
        f"No Cnn14 checkpoint found ({why}). Supply it in one of these ways:\n"
        f"  1. set AUDIO_EMBEDDINGS_CHECKPOINT_PATH=/path/to/{CHECKPOINT_FILENAME} "
        "(or pass --checkpoint);\n"
        f"  2. put the file at {cached};\n"
        f"  3. allow a one-time download from {_without_query(url)} "
        "(AUDIO_EMBEDDINGS_ALLOW_DOWNLOAD=true, network access needed);\n"
        "  4. for offline trials only: `audio-embeddings make-random-checkpoint PATH` writes a "
        "random-weight checkpoint (its embeddings carry no meaning)."
    )
