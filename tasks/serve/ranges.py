"""HTTP byte ranges (RFC 9110 section 14): what part of a file a player asked for.

Local files are served by Starlette's FileResponse, which does this itself; blobs are streamed
with this parser and a ranged download.
"""

from __future__ import annotations

import re

_SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiableError(Exception):
    """The range lies outside the file (answered with 416 and the file's size)."""


def requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte (inclusive) of a single ``bytes=`` range on a file of ``size``
    bytes; None for the whole file (no header, or a form we may ignore: several ranges, other
    units, malformed)."""
    if not header:
        return None
    match = _SINGLE_RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # a suffix: the last N bytes
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiableError(header)
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiableError(header)
    return start, end
