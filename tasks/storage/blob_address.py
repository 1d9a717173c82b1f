"""Where something is in Azure Blob Storage, in every form the project reads or writes.

- **Source URI** ``az://<container>/<prefix>``: a container and a prefix in it, on the configured
  account. Users write this form (ingest sources, the blob sensor, searches by blob).
- **Item URI** ``az://<account>/<container>/<path>``: one stored blob. Snapshot rows record it
  as ``source_uri``, and document keys are digests of it, so its form never changes.
- **URL** ``https://<account>.blob.core.windows.net/<container>/<path>`` (or ``.dfs.``), or an
  emulator's ``http://<host>:<port>/<account>/<container>/<path>``: what Event Grid reports and
  what the portal shows. A query string (a SAS token) is dropped, and no error repeats it.

The two ``az://`` forms differ only in meaning, so a caller says which one it holds. Standard
library only: the Event Grid bridge ships this file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

SOURCE_FORM = "az://<container>/<optional prefix>"
ITEM_FORM = "az://<account>/<container>/<path>"
URL_FORM = "https://<account>.blob.core.windows.net/<container>/<path>"
# Azure container names: 3-63 lowercase letters, digits and single hyphens, alphanumeric ends.
_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_ACCOUNT_HOSTS = (".blob.core.windows.net", ".dfs.core.windows.net")


class BlobAddressError(ValueError):
    """Text that is not a blob address of the form expected; the message names the text, what is
    wrong and the form expected."""


@dataclass(frozen=True)
class BlobAddress:
    """A container and a path in it (a blob name, a prefix, or "" for the whole container), and
    the storage account when the form names one."""

    container: str
    path: str = ""
    account: str | None = None

    def __post_init__(self) -> None:
        if not _CONTAINER_NAME.match(self.container):
            raise BlobAddressError(
                f"{self.container!r} is not a container name (3-63 lowercase letters, digits "
                "and single hyphens)"
            )

    @classmethod
    def from_source_uri(cls, uri: str) -> BlobAddress:
        """``az://<container>/<prefix>`` (the prefix may be empty)."""
        if not uri.startswith("az://"):
            raise BlobAddressError(f"{uri!r}: expected {SOURCE_FORM}")
        container, _, prefix = uri[len("az://") :].partition("/")
        return cls._made(uri, SOURCE_FORM, container=container, path=prefix)

    @classmethod
    def from_item_uri(cls, uri: str) -> BlobAddress:
        """``az://<account>/<container>/<path>``: one blob, as snapshot rows record it."""
        parts = uri[len("az://") :].split("/", 2) if uri.startswith("az://") else []
        if len(parts) != 3 or not parts[0] or not parts[2]:
            raise BlobAddressError(f"{uri!r}: expected {ITEM_FORM}")
        account, container, path = parts
        return cls._made(uri, ITEM_FORM, container=container, path=path, account=account)

    @classmethod
    def from_url(cls, url: str) -> BlobAddress:
        """A blob's URL (Azure or emulator), or its item URI; it must name a blob, not a
        container."""
        if url.startswith("az://"):
            return cls.from_item_uri(url)
        url = url.split("?", 1)[0]  # a SAS token is a secret: never parsed, never repeated
        parsed = urlparse(url)
        host = parsed.hostname or ""
        segments = unquote(parsed.path).lstrip("/").split("/")
        if parsed.scheme not in ("http", "https") or not host:
            raise BlobAddressError(f"{url!r}: expected {URL_FORM}")
        if host.endswith(_ACCOUNT_HOSTS):
            account = host.split(".", 1)[0]
        else:  # an emulator: the account is the first path segment
            account, segments = segments[0], segments[1:]
        if len(segments) < 2 or not account or not segments[-1]:
            raise BlobAddressError(f"{url!r}: names no blob; expected {URL_FORM}")
        return cls._made(
            url, URL_FORM, container=segments[0], path="/".join(segments[1:]), account=account
        )

    @classmethod
    def _made(cls, text: str, form: str, **fields: str) -> BlobAddress:
        try:
            return cls(**fields)
        except BlobAddressError as error:
            raise BlobAddressError(f"{text!r}: {error}; expected {form}") from None

    @property
    def source_uri(self) -> str:
        """``az://<container>/<path>``: the container and prefix, without the account."""
        return f"az://{self.container}/{self.path}"

    @property
    def item_uri(self) -> str:
        """``az://<account>/<container>/<path>``; only an address with an account has one."""
        if self.account is None:
            raise BlobAddressError(f"{self.source_uri!r} names no account; it has no item URI")
        return f"az://{self.account}/{self.container}/{self.path}"

    def in_account(self, account: str) -> BlobAddress:
        """This container and path on ``account``."""
        return BlobAddress(self.container, self.path, account)
