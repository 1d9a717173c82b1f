"""Why a file cannot be embedded: the kinds of rejection (stored with each quarantined file),
and the error that names the file and the reason."""

from __future__ import annotations

from enum import StrEnum

from tasks.errors import UserError


class AudioErrorKind(StrEnum):
    """Why a file was rejected; stored in the quarantine table."""

    EMPTY = "empty_file"
    TOO_LARGE = "too_large"
    NOT_AUDIO = "not_audio"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    ZERO_LENGTH = "zero_length"
    TOO_LONG = "too_long"
    BAD_SAMPLE_RATE = "bad_sample_rate"
    TOO_MANY_CHANNELS = "too_many_channels"
    NON_FINITE = "non_finite_samples"
    SILENT = "silent"
    # The source could not deliver the bytes (gone, changed, service down): not the file's fault,
    # so it is reported but not quarantined, and the next run tries again.
    UNREADABLE = "unreadable"


class AudioError(UserError):
    """A file that cannot be embedded, with the file's name and the reason."""

    def __init__(self, name: str, kind: AudioErrorKind, reason: str) -> None:
        super().__init__(f"{name}: {reason} [{kind}]")
        self.name = name
        self.kind = kind
        self.reason = reason

    @property
    def retryable(self) -> bool:
        """Whether a later run may succeed on the same file."""
        return self.kind == AudioErrorKind.UNREADABLE

    def __reduce__(self):
        # an error that crosses a process boundary (a Dask task, a process pool) keeps its parts
        return (type(self), (self.name, self.kind, self.reason))


class TooLongError(AudioError):
    """A file longer than the limit that ``setting`` sets (s)."""

    def __init__(
        self,
        name: str,
        duration_seconds: float,
        limit_seconds: float,
        setting: str = "AUDIO_EMBEDDINGS_MAX_DURATION_SECONDS",
    ) -> None:
        super().__init__(
            name,
            AudioErrorKind.TOO_LONG,
            f"the file lasts {duration_seconds:,.0f} s, over the limit of {limit_seconds:,.0f} s "
            f"({setting})",
        )
        self.duration_seconds, self.limit_seconds, self.setting = (
            duration_seconds,
            limit_seconds,
            setting,
        )

    def __reduce__(self):
        return (type(self), (self.name, self.duration_seconds, self.limit_seconds, self.setting))
