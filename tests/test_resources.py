"""The one place that picks local or Azure: sources by URI, table options, index backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.errors import UserError
from tasks.index.azure_search import AzureSearchIndex, SearchConfigurationError
from tasks.index.lancedb_index import LanceDBIndex
from tasks.resources import locate, open_index, open_source
from tasks.settings import BlobSettings, Settings
from tasks.storage.azure import BlobConfigurationError
from tasks.storage.delta import table_storage_options
from tasks.storage.sources import (
    BlobSource,
    InvalidSourceError,
    LocalSource,
    SourceNotFoundError,
)

NO_BLOB = BlobSettings()


def test_a_folder_or_file_uri_is_a_local_source(catalogue: Path) -> None:
    for uri in (str(catalogue), catalogue.as_uri()):
        source = open_source(uri, NO_BLOB)
        assert isinstance(source, LocalSource)
        item = next(iter(source.list_items()))
        assert source.read_bytes(item) == (catalogue / item.path).read_bytes()
    located, path = locate((catalogue / "tones/a440.wav").as_uri(), NO_BLOB)
    assert isinstance(located, LocalSource) and path == "a440.wav"


def test_az_uri_is_a_blob_source_in_the_configured_account() -> None:
    settings = BlobSettings(blob_connection_string="UseDevelopmentStorage=true")
    source = open_source("az://audio-in/site-a/", settings)
    assert isinstance(source, BlobSource)
    assert (source.account, source.prefix) == ("devstoreaccount1", "site-a/")
    assert source.item_uri_prefix == "az://devstoreaccount1/audio-in/site-a/"


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("az://", "not a container name"),
        ("az://Audio_Files/x", "not a container name"),
        ("az:/audio/x", "expected az://<container>"),
        ("ftp://host/x", "unsupported source URI"),
    ],
)
def test_malformed_uris_are_user_errors_that_say_what_is_expected(uri: str, reason: str) -> None:
    settings = BlobSettings(blob_connection_string="UseDevelopmentStorage=true")
    with pytest.raises(InvalidSourceError, match=reason) as caught:
        open_source(uri, settings)
    assert isinstance(caught.value, UserError)


def test_missing_folder_and_unconfigured_blob_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="not found"):
        open_source(str(tmp_path / "nope"), NO_BLOB)
    with pytest.raises(BlobConfigurationError, match="BLOB_CONNECTION_STRING"):
        open_source("az://audio/", NO_BLOB)


def test_tables_on_azure_get_storage_options_and_local_ones_none() -> None:
    settings = BlobSettings(blob_connection_string="UseDevelopmentStorage=true")
    assert table_storage_options("/data/snapshots", settings) is None
    for uri in ("az://stores/snapshots", "abfss://stores@acct.dfs.core.windows.net/x"):
        assert table_storage_options(uri, settings)["account_name"] == "devstoreaccount1"


def test_the_index_backend_follows_the_setting(tmp_path: Path) -> None:
    local = open_index(Settings(data_dir=tmp_path))
    assert isinstance(local, LanceDBIndex) and local.uri == str((tmp_path / "index").resolve())
    with pytest.raises(SearchConfigurationError, match="SEARCH_ENDPOINT"):
        open_index(Settings(index_backend="azure_search"))
    remote = open_index(
        Settings(
            index_backend="azure_search",
            search_endpoint="https://example.search.windows.net",
            search_api_key="k",
        )
    )
    assert isinstance(remote, AzureSearchIndex) and remote.name == "audio-embeddings"
