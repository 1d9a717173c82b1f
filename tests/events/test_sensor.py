"""The polling sensor's selection and cursor: never skip, never repeat, wait for settled seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasks.events.sensor import SensorCursor, select_new
from tasks.storage.sources import AudioItem

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def _item(path: str, second: int, etag: str = "e") -> AudioItem:
    return AudioItem(f"az://a/c/{path}", path, etag, 1, T0 + timedelta(seconds=second))


def test_cursor_never_skips_or_repeats() -> None:
    listing = [_item("b.wav", 0), _item("a.wav", 0), _item("c.wav", 1), _item("d.wav", 2)]
    now = T0 + timedelta(seconds=100)
    first = select_new(listing, SensorCursor(), cap=2, now=now)
    assert [i.path for i in first.items] == ["a.wav", "b.wav"]
    second = select_new(listing, first.cursor, cap=2, now=now)
    assert [i.path for i in second.items] == ["c.wav", "d.wav"]
    assert select_new(listing, second.cursor, cap=2, now=now).items == []
    overwritten = [*listing, _item("a.wav", 5, etag="e2")]
    assert [i.path for i in select_new(overwritten, second.cursor, 2, now=now).items] == ["a.wav"]


def test_unsettled_seconds_wait_so_late_arrivals_in_them_are_not_skipped() -> None:
    listing = [_item("z.wav", 10)]
    early = select_new(
        listing, SensorCursor(), cap=5, settle_seconds=10, now=T0 + timedelta(seconds=15)
    )
    assert early.items == [] and early.cursor == SensorCursor()
    later = [*listing, _item("a.wav", 10)]  # same second, smaller name, listed later
    settled = select_new(
        later, SensorCursor(), cap=5, settle_seconds=10, now=T0 + timedelta(seconds=25)
    )
    assert [i.path for i in settled.items] == ["a.wav", "z.wav"]


def test_cursor_round_trips_through_json() -> None:
    cursor = SensorCursor(T0, "x/y.wav")
    assert SensorCursor.from_json(cursor.to_json()) == cursor
    assert SensorCursor.from_json(None) == SensorCursor()
