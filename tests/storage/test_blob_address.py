"""BlobAddress: every form the project reads or writes, and every mistake a user can make."""

from __future__ import annotations

import pytest

from tasks.storage.blob_address import BlobAddress, BlobAddressError


@pytest.mark.parametrize(
    ("uri", "container", "prefix"),
    [
        ("az://audio/", "audio", ""),
        ("az://audio", "audio", ""),
        ("az://audio/site-a/2026/", "audio", "site-a/2026/"),
        ("az://a-1-b/x y/z.wav", "a-1-b", "x y/z.wav"),
    ],
)
def test_a_source_uri_is_a_container_and_a_prefix(uri: str, container: str, prefix: str) -> None:
    address = BlobAddress.from_source_uri(uri)
    assert (address.container, address.path, address.account) == (container, prefix, None)
    assert BlobAddress.from_source_uri(address.source_uri) == address


@pytest.mark.parametrize(
    ("uri", "account", "container", "path"),
    [
        ("az://acct/audio/a.wav", "acct", "audio", "a.wav"),
        (
            "az://devstoreaccount1/audio/deep/er/z.flac",
            "devstoreaccount1",
            "audio",
            "deep/er/z.flac",
        ),
        ("az://acct/audio/it's?here#1.wav", "acct", "audio", "it's?here#1.wav"),
    ],
)
def test_an_item_uri_names_one_blob_and_prints_back_unchanged(
    uri: str, account: str, container: str, path: str
) -> None:
    address = BlobAddress.from_item_uri(uri)
    assert (address.account, address.container, address.path) == (account, container, path)
    assert address.item_uri == uri  # snapshot keys are digests of it: it must round-trip exactly


@pytest.mark.parametrize(
    ("url", "account", "container", "path"),
    [
        ("https://acct.blob.core.windows.net/audio/a/b.wav", "acct", "audio", "a/b.wav"),
        ("https://acct.dfs.core.windows.net/audio/a/b.wav", "acct", "audio", "a/b.wav"),
        (
            "https://acct.blob.core.windows.net/audio/a%20b.wav?sv=x&sig=s3cret",
            "acct",
            "audio",
            "a b.wav",
        ),
        (
            "http://127.0.0.1:10000/devstoreaccount1/audio/x%27y.wav",
            "devstoreaccount1",
            "audio",
            "x'y.wav",
        ),
        ("az://acct/audio/deep/er/z.flac", "acct", "audio", "deep/er/z.flac"),
    ],
)
def test_a_url_of_the_account_or_an_emulator_names_a_blob(
    url: str, account: str, container: str, path: str
) -> None:
    address = BlobAddress.from_url(url)
    assert (address.account, address.container, address.path) == (account, container, path)


@pytest.mark.parametrize(
    ("parse", "text", "reason"),
    [
        (BlobAddress.from_source_uri, "az://", "is not a container name"),
        (BlobAddress.from_source_uri, "az://Audio_Files/x", "is not a container name"),
        (BlobAddress.from_source_uri, "az://ab/x", "is not a container name"),
        (BlobAddress.from_source_uri, "az://audio--files/x", "is not a container name"),
        (BlobAddress.from_source_uri, "az:/audio/x", "expected az://<container>"),
        (BlobAddress.from_source_uri, "https://acct.blob.core.windows.net/a", "expected az://"),
        (BlobAddress.from_item_uri, "az://acct/audio", "expected az://<account>/<container>"),
        (BlobAddress.from_item_uri, "az://acct/audio/", "expected az://<account>/<container>"),
        (BlobAddress.from_item_uri, "az:///audio/a.wav", "expected az://<account>/<container>"),
        (BlobAddress.from_item_uri, "file:///x/a.wav", "expected az://<account>/<container>"),
        (BlobAddress.from_item_uri, "az://acct/Audio/a.wav", "is not a container name"),
        (BlobAddress.from_url, "https://acct.blob.core.windows.net/audio", "names no blob"),
        (BlobAddress.from_url, "https://acct.blob.core.windows.net/audio/", "names no blob"),
        (BlobAddress.from_url, "http://127.0.0.1:10000/devstoreaccount1/audio", "names no blob"),
        (BlobAddress.from_url, "ftp://acct.blob.core.windows.net/audio/a.wav", "expected https://"),
        (BlobAddress.from_url, "audio/a.wav", "expected https://"),
        (BlobAddress.from_url, "https://acct.blob.core.windows.net/UP/a.wav", "not a container"),
    ],
)
def test_every_mistake_is_named_with_the_form_expected(parse, text: str, reason: str) -> None:
    with pytest.raises(BlobAddressError, match=reason) as raised:
        parse(text)
    assert repr(text.split("?")[0]) in str(raised.value)
    assert "expected" in str(raised.value)


def test_a_sas_token_never_appears_in_an_error() -> None:
    with pytest.raises(BlobAddressError) as raised:
        BlobAddress.from_url("https://acct.blob.core.windows.net/audio/?sv=1&sig=s3cret")
    assert "s3cret" not in str(raised.value)


def test_only_an_address_with_an_account_has_an_item_uri() -> None:
    address = BlobAddress.from_source_uri("az://audio/a.wav")
    with pytest.raises(BlobAddressError, match="names no account"):
        _ = address.item_uri
    assert address.in_account("acct").item_uri == "az://acct/audio/a.wav"
    assert BlobAddress.from_item_uri("az://acct/audio/a.wav").source_uri == "az://audio/a.wav"
