"""Azure Blob Storage as an audio source, against Azurite started by the tests."""

from __future__ import annotations

import pytest
from azure.storage.blob import ContainerClient

from tasks.audio import samples
from tasks.errors import ServiceUnreachableError
from tasks.resources import open_source
from tasks.settings import BlobSettings
from tasks.storage.sources import BlobSource, SourceReadError
from tests.blobs import AZURITE_KEY, fill, unreachable_connection_string, upload


def test_listing_streams_items_with_etag_size_metadata(blob_env: ContainerClient) -> None:
    fill(blob_env)
    blob_env.get_blob_client("site-a/pumps/p1.wav").set_blob_metadata({"machine": "pump-01"})
    source = open_source(f"az://{blob_env.container_name}/site-a/", BlobSettings())
    assert isinstance(source, BlobSource)
    items = list(source.list_items())
    assert [i.path for i in items] == ["site-a/pumps/p1.wav", "site-a/pumps/p2.flac"]
    first = items[0]
    assert first.uri == f"az://devstoreaccount1/{blob_env.container_name}/site-a/pumps/p1.wav"
    assert first.metadata == {"machine": "pump-01"}
    assert not first.etag.startswith('"') and first.size_bytes > 0
    assert source.item_uri_prefix.endswith(f"{blob_env.container_name}/site-a/")


def test_a_blob_changed_after_listing_is_left_for_the_next_run(blob_env: ContainerClient) -> None:
    upload(blob_env, "moving.wav", samples.tone(2.0, 16_000), 16_000)
    source = open_source(f"az://{blob_env.container_name}/", BlobSettings())
    (item,) = list(source.list_items())
    upload(blob_env, "moving.wav", samples.noise(2.0, 16_000), 16_000)
    with pytest.raises(SourceReadError, match=r"moving\.wav"):
        source.read_bytes(item)


def test_a_large_blob_is_read_through_a_temporary_file_of_the_listed_version(
    blob_env: ContainerClient,
) -> None:
    upload(blob_env, "long.wav", samples.engine(6.0, 16_000), 16_000)
    source = open_source(f"az://{blob_env.container_name}/", BlobSettings())
    (item,) = list(source.list_items())
    with source.open_file(item) as file:
        assert file.read() == source.read_bytes(item)
    assert file.closed  # an unnamed temporary file: gone once closed
    upload(blob_env, "long.wav", samples.noise(6.0, 16_000), 16_000)
    with pytest.raises(SourceReadError, match=r"long\.wav"), source.open_file(item):
        pass


def test_an_unreachable_account_is_one_clear_error_without_the_key() -> None:
    settings = BlobSettings(
        blob_connection_string=unreachable_connection_string(), blob_retry_total=0
    )
    source = open_source("az://audio/", settings)
    with pytest.raises(ServiceUnreachableError, match="cannot reach Azure Blob Storage") as caught:
        list(source.list_items())
    message = str(caught.value)
    assert "AUDIO_EMBEDDINGS_BLOB_CONNECTION_STRING" in message
    assert AZURITE_KEY not in message
