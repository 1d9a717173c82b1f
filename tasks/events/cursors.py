"""Where a polling flow has got to, kept in a Prefect Variable (JSON, visible and editable in the
UI): the blob sensor's last announced blob, the anomaly scan's last scanned snapshot version.

A cursor is saved only after the work it covers is done, so a crash in between repeats work
(harmless: event ids and results are idempotent) and never skips it.
"""

from __future__ import annotations

import hashlib
from typing import Any


def cursor_name(kind: str, *identity: str) -> str:
    """A Variable name for ``kind`` of cursor over ``identity`` (what is watched, and how).

    Variable names are limited in length and characters, so the identity is hashed.
    """
    return f"{kind}_" + hashlib.sha1("|".join(identity).encode()).hexdigest()[:16]


def load_cursor(name: str) -> Any:
    """The cursor's stored value, or None before its first save."""
    from prefect.variables import Variable

    return Variable.get(name, default=None)


def save_cursor(name: str, value: Any, tags: list[str]) -> None:
    """Store the cursor (overwriting the previous value)."""
    from prefect.variables import Variable

    Variable.set(name, value, overwrite=True, tags=["audio-embeddings", *tags])


def cursor_values(kind: str) -> list[Any]:
    """The stored values of every cursor of ``kind`` (e.g. the snapshot versions the anomaly
    scans will diff from next, which table upkeep must keep readable)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        variables = client.read_variables()
    return [v.value for v in variables if v.name.startswith(f"{kind}_")]
