"""Connections to Azure Blob Storage: clients for audio, storage options for Delta tables.

Three ways to authenticate, first configured wins (``tasks.settings.BlobSettings``):
1. a connection string (``AUDIO_EMBEDDINGS_BLOB_CONNECTION_STRING``; Azurite, development);
2. an account URL plus a SAS token (``..._BLOB_ACCOUNT_URL`` + ``..._BLOB_SAS_TOKEN``);
3. an account URL alone: ``DefaultAzureCredential`` (managed identity, workload identity,
   ``az login``), which needs the "Storage Blob Data Contributor" role on the account.

Secrets are ``SecretStr`` in settings and are scrubbed from any message we raise or log.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

from azure.storage.blob import BlobServiceClient, ExponentialRetry

from tasks.errors import UserError, reaching, scrub_secrets
from tasks.settings import BlobSettings

STORAGE_SCOPE = "https://storage.azure.com/.default"
BLOB_SETTINGS_HINT = (
    "AUDIO_EMBEDDINGS_BLOB_CONNECTION_STRING or AUDIO_EMBEDDINGS_BLOB_ACCOUNT_URL "
    "(and the network path to the account)"
)


class BlobConfigurationError(UserError, ValueError):
    """Blob access was asked for but is not configured."""


def blob_secrets(settings: BlobSettings) -> list[str]:
    """Every secret value configured, for scrubbing messages."""
    values = []
    if settings.blob_connection_string:
        connection = settings.blob_connection_string.get_secret_value()
        values.append(connection)
        values.extend(
            v
            for k, v in _parse_connection_string(connection).items()
            if k.lower() in ("accountkey", "sharedaccesssignature")
        )
    if settings.blob_sas_token:
        values.append(settings.blob_sas_token.get_secret_value().lstrip("?"))
    return [v for v in values if v]


def redact(message: str, settings: BlobSettings) -> str:
    """``message`` with every configured secret replaced by ``***``."""
    return scrub_secrets(message, blob_secrets(settings))


@contextmanager
def reaching_blob_storage(settings: BlobSettings) -> Iterator[None]:
    """Connection and credential failures inside the block become one clear user error."""
    with reaching("Azure Blob Storage", BLOB_SETTINGS_HINT, blob_secrets(settings)):
        yield


def service_client(settings: BlobSettings) -> BlobServiceClient:
    """A BlobServiceClient with one shared retry policy (exponential backoff with jitter).

    The SDK retries timeouts, connection errors, 408, 429 (throttling) and 5xx itself; that is
    the only retry layer for a storage request.
    """
    options = {
        "retry_policy": ExponentialRetry(
            initial_backoff=1,
            increment_base=2,
            retry_total=settings.blob_retry_total,
            random_jitter_range=1,
        ),
        "connection_timeout": 20,
        "read_timeout": 120,
    }
    if settings.blob_connection_string:
        return BlobServiceClient.from_connection_string(
            settings.blob_connection_string.get_secret_value(), **options
        )
    if settings.blob_account_url and settings.blob_sas_token:
        return BlobServiceClient(
            settings.blob_account_url,
            credential=settings.blob_sas_token.get_secret_value(),
            **options,
        )
    if settings.blob_account_url:
        from azure.identity import DefaultAzureCredential

        return BlobServiceClient(
            settings.blob_account_url, credential=DefaultAzureCredential(), **options
        )
    raise BlobConfigurationError(
        "Azure Blob Storage is not configured: set AUDIO_EMBEDDINGS_BLOB_CONNECTION_STRING, or "
        "AUDIO_EMBEDDINGS_BLOB_ACCOUNT_URL (with AUDIO_EMBEDDINGS_BLOB_SAS_TOKEN, or with an "
        "identity that DefaultAzureCredential finds)"
    )


def delta_storage_options(settings: BlobSettings) -> dict[str, str]:
    """deltalake (object_store) options that reach the same account as ``service_client``."""
    if settings.blob_connection_string:
        parts = _parse_connection_string(settings.blob_connection_string.get_secret_value())
        options = {"account_name": parts["AccountName"]}
        if "AccountKey" in parts:
            options["account_key"] = parts["AccountKey"]
        if "SharedAccessSignature" in parts:
            options["sas_token"] = parts["SharedAccessSignature"]
        endpoint = parts.get("BlobEndpoint")
        if endpoint:
            # Azurite and custom domains; don't use azure_storage_use_emulator (it pins port 10000).
            options["azure_endpoint"] = endpoint.rstrip("/")
            if endpoint.startswith("http://"):
                options["azure_allow_http"] = "true"
        return options
    if not settings.blob_account_url:
        raise BlobConfigurationError(
            "Delta tables on az:// need Blob settings: set AUDIO_EMBEDDINGS_BLOB_CONNECTION_STRING "
            "or AUDIO_EMBEDDINGS_BLOB_ACCOUNT_URL"
        )
    account = urlparse(settings.blob_account_url).hostname.split(".")[0]
    if settings.blob_sas_token:
        return {
            "account_name": account,
            "sas_token": settings.blob_sas_token.get_secret_value().lstrip("?"),
        }
    from azure.identity import DefaultAzureCredential

    with reaching_blob_storage(settings):
        token = DefaultAzureCredential().get_token(STORAGE_SCOPE).token
    return {"account_name": account, "bearer_token": token}


# What "UseDevelopmentStorage=true" stands for: Azurite's documented account on its default port.
_DEVELOPMENT_STORAGE = {
    "AccountName": "devstoreaccount1",
    "AccountKey": "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
    "KBHBeksoGMGw==",
    "BlobEndpoint": "http://127.0.0.1:10000/devstoreaccount1",
}


def _parse_connection_string(connection: str) -> dict[str, str]:
    if connection.replace(" ", "").lower().rstrip(";") == "usedevelopmentstorage=true":
        return dict(_DEVELOPMENT_STORAGE)
    parts = {}
    for piece in connection.split(";"):
        if "=" in piece:
            name, value = piece.split("=", 1)
            parts[name.strip()] = value.strip()
    return parts
