"""Reaching the storage account: Delta storage options, and secrets kept out of messages."""

from __future__ import annotations

from tasks.settings import BlobSettings
from tasks.storage.azure import delta_storage_options, redact


def test_secrets_never_reach_messages(azurite: str) -> None:
    settings = BlobSettings(blob_connection_string=azurite)
    key = delta_storage_options(settings)["account_key"]
    assert key and key in azurite
    assert redact(f"failed with {azurite} and {key}", settings) == "failed with *** and ***"
    assert key not in repr(settings) and key not in str(settings.model_dump())


def test_development_storage_shorthand_reaches_azurite_defaults() -> None:
    settings = BlobSettings(blob_connection_string="UseDevelopmentStorage=true")
    options = delta_storage_options(settings)
    assert options["account_name"] == "devstoreaccount1"
    assert options["azure_endpoint"] == "http://127.0.0.1:10000/devstoreaccount1"
    assert options["azure_allow_http"] == "true"
