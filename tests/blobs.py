"""Filling Azurite containers with synthetic audio, for the tests that run on Blob Storage."""

from __future__ import annotations

import numpy as np
from azure.storage.blob import ContainerClient

from tasks.audio import samples
from tasks.resources import snapshot_table
from tasks.settings import Settings
from tasks.storage.snapshots import SnapshotTable

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft; not a secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def connection_string(port: int) -> str:
    """The connection string of Azurite's development account on a loopback ``port``."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )


def unreachable_connection_string() -> str:
    """A well-formed connection string to a port where nothing listens (discard, 9)."""
    return connection_string(9)


def upload(
    container: ContainerClient, name: str, mono: np.ndarray, rate: int, channels: int = 1
) -> None:
    """``mono`` encoded in the format the name's extension says, uploaded as blob ``name``."""
    data = samples.encode(mono, rate, name.rsplit(".", 1)[-1], channels)
    container.upload_blob(name, data, overwrite=True)


def fill(container: ContainerClient) -> None:
    """Four audio blobs in two sites, in four formats, and one blob that is not audio."""
    upload(container, "site-a/pumps/p1.wav", samples.engine(3.0, 44_100, 1800.0, 1), 44_100, 2)
    upload(container, "site-a/pumps/p2.flac", samples.engine(2.5, 48_000, 1500.0, 2), 48_000)
    upload(container, "site-b/2026/11/tick.ogg", samples.clicks(3.0, 22_050, 4.0), 22_050)
    upload(container, "site-b/2026/11/sweep.mp3", samples.chirp(3.0, 44_100), 44_100, 2)
    container.upload_blob("site-b/readme.txt", b"not listed: not an audio extension")


def configured_snapshot() -> SnapshotTable:
    """The snapshot table the environment's settings point at (on Azurite in these tests)."""
    return snapshot_table(Settings())
