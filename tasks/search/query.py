"""What a search query names, and its vector.

A query is audio to embed (a file on this machine, a blob, an upload) or a file already in the
catalogue, whose stored vector is used as it is: the same vector an embedding of that file would
give, without loading the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tasks.errors import UserError
from tasks.search.catalogue import Catalogue, CatalogueItem
from tasks.settings import BlobSettings

if TYPE_CHECKING:
    from tasks.model.file_vectors import FileEmbedding


class QueryNotFoundError(UserError):
    """The query is neither audio that can be read nor a file of the catalogue."""


class QueryTooLargeError(UserError):
    """The query audio is larger than a query may be."""


@dataclass(frozen=True)
class QueryAudio:
    """Audio bytes to embed, and the name errors call them by."""

    name: str
    data: bytes


def is_blob_url(query: str) -> bool:
    """Whether ``query`` names a blob (``az://container/blob`` or an http(s) blob URL)."""
    return query.startswith(("az://", "https://", "http://"))


def read_blob_query(url: str, settings: BlobSettings, max_bytes: int) -> QueryAudio:
    """The bytes of the blob ``url`` names: ``az://<container>/<blob>``, or the blob's URL on the
    configured storage account. Only that account is read, with the configured credentials, so
    a URL cannot make the service fetch from anywhere else."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    from tasks.storage.azure import reaching_blob_storage, redact, service_client
    from tasks.storage.blob_address import BlobAddress, BlobAddressError

    shown = url.split("?", 1)[0]  # a SAS token never reaches a message
    client = service_client(settings)
    account_url = client.url.rstrip("/") + "/"
    if not url.startswith(("az://", account_url)):
        raise QueryNotFoundError(
            f"{shown}: only blobs of the configured storage account ({account_url}) can be "
            "searched with"
        )
    try:
        parse = BlobAddress.from_source_uri if url.startswith("az://") else BlobAddress.from_url
        address = parse(url)
    except BlobAddressError as error:
        raise QueryNotFoundError(str(error)) from None
    if not address.path or address.path.endswith("/"):
        raise QueryNotFoundError(f"{shown}: names a container or folder, not a blob")
    blob_client = client.get_blob_client(address.container, address.path)
    try:
        with reaching_blob_storage(settings):
            size = blob_client.get_blob_properties().size
            if size > max_bytes:
                raise QueryTooLargeError(
                    f"{shown}: {size:,} bytes, over the query limit of {max_bytes:,} bytes"
                )
            return QueryAudio(shown, blob_client.download_blob().readall())
    except ResourceNotFoundError:
        raise QueryNotFoundError(f"{shown}: no such blob") from None
    except AzureError as error:
        raise QueryNotFoundError(redact(f"{shown}: cannot be read ({error})", settings)) from None


def resolve_query(
    query: str, catalogue: Catalogue, settings: BlobSettings, max_bytes: int
) -> QueryAudio | CatalogueItem:
    """A blob URL, a file on this machine, or else a catalogue key or path (as the snapshot
    lists it: relative to the ingested folder or container)."""
    if is_blob_url(query):
        return read_blob_query(query, settings, max_bytes)
    local = Path(query).expanduser()
    if local.is_file():
        size = local.stat().st_size
        if size > max_bytes:
            raise QueryTooLargeError(f"{query}: {size:,} bytes, over the limit of {max_bytes:,}")
        return QueryAudio(query, local.read_bytes())
    item = catalogue.find(query)
    if item is None:
        raise QueryNotFoundError(
            f"{query}: not a file on this machine, a blob URL, or a path or key of the catalogue"
        )
    return item


def query_vector(
    query: QueryAudio | CatalogueItem,
    catalogue: Catalogue,
    segments: bool,
    embed: Callable[[QueryAudio], np.ndarray],
) -> np.ndarray:
    """The vector to search with: ``embed`` of audio, or a catalogue file's stored vector (its
    embedding, or with ``segments`` the mean of its segments, as ``embed`` would give)."""
    if isinstance(query, QueryAudio):
        return embed(query)
    vector = catalogue.segments_vector(query.key) if segments else catalogue.file_vector(query.key)
    if vector is None:
        raise QueryNotFoundError(
            f"{query.path}: the catalogue holds no {'segments' if segments else 'embedding'} "
            "for this file (re-run ingest to store them)"
        )
    return vector


def embedding_vector(embedded: FileEmbedding, segments: bool) -> np.ndarray:
    """An embedded query's vector: the file's, or with ``segments`` the
    mean of its segments (its own audio only, not a short clip's padding)."""
    return embedded.segments.embeddings.mean(axis=0) if segments else embedded.embedding
