"""One settings object for the whole pipeline: every knob has a default and an environment variable.

Environment variables are the field names upper-cased with the prefix ``AUDIO_EMBEDDINGS_``
(for example ``AUDIO_EMBEDDINGS_BATCH_SIZE=16``). A ``.env`` file in the working directory is
read too. Flows and the CLI build one ``Settings`` at the edge and pass the parts each task needs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tasks.azure_storage import BlobSettings

#: Cnn14's input rate (Hz); every file is resampled to it.
MODEL_SAMPLE_RATE = 32_000


class AudioLimits(BaseSettings):
    """What the decoder accepts and how it windows (seconds, bytes, Hz)."""

    model_config = SettingsConfigDict(env_prefix="AUDIO_EMBEDDINGS_", extra="ignore")

    window_seconds: float = Field(10.0, gt=0.5, le=60.0, description="Window length (s)")
    hop_seconds: float | None = Field(
        None, gt=0.0, description="Hop between window starts (s); default: the window length"
    )
    max_file_bytes: int = Field(1 << 30, gt=0, description="Largest accepted file (bytes)")
    max_duration_seconds: float = Field(3 * 3600.0, gt=0, description="Longest accepted file (s)")
    min_sample_rate: int = Field(1_000, gt=0, description="Lowest accepted sample rate (Hz)")
    max_sample_rate: int = Field(768_000, gt=0, description="Highest accepted sample rate (Hz)")
    # One LSB of 16-bit audio is -90.3 dBFS: a file whose peak stays below it holds no signal.
    silence_peak_dbfs: float = Field(-90.0, description="Peak below which a file is silent (dBFS)")

    @model_validator(mode="after")
    def _hop_within_window(self) -> AudioLimits:
        if self.hop_seconds is not None and self.hop_seconds > self.window_seconds:
            raise ValueError(
                "hop_seconds must not exceed window_seconds (windows would skip audio)"
            )
        return self

    @property
    def hop(self) -> float:
        """Hop between window starts (s)."""
        return self.hop_seconds if self.hop_seconds is not None else self.window_seconds


class ModelSettings(BaseSettings):
    """Where the Cnn14 checkpoint comes from and how it runs."""

    model_config = SettingsConfigDict(env_prefix="AUDIO_EMBEDDINGS_", extra="ignore")

    checkpoint_path: Path | None = Field(
        None, description="Cnn14 checkpoint file; first in the resolution order"
    )
    panns_data_dir: Path = Field(
        Path.home() / "panns_data", description="Where panns-inference keeps its checkpoint"
    )
    allow_download: bool = Field(True, description="Download the official checkpoint if missing")
    device: str = Field("auto", description="'auto', 'cpu', 'cuda' or 'cuda:N'")
    batch_size: int = Field(8, gt=0, le=1024, description="Windows per forward pass")
    top_labels: int = Field(5, ge=0, le=527, description="AudioSet labels kept per file")


class Settings(AudioLimits, ModelSettings, BlobSettings):
    """Everything: audio limits, model, Azure Blob access, where snapshots and the index live."""

    model_config = SettingsConfigDict(
        env_prefix="AUDIO_EMBEDDINGS_", env_file=".env", extra="ignore"
    )

    data_dir: Path = Field(
        Path(".audio-embeddings"), description="Root of the embedded default stores"
    )
    snapshot_uri: str | None = Field(None, description="Delta table of embeddings")
    quarantine_uri: str | None = Field(None, description="Delta table of rejected inputs")
    index_uri: str | None = Field(None, description="LanceDB folder of the vector index")
    index_name: str = Field("audio_embeddings", description="Index (table) name")
    shard_size: int = Field(64, gt=0, description="Files per Prefect task")
    prepare_workers: int = Field(
        2, gt=0, le=64, description="Threads per shard that download and decode ahead of the model"
    )

    @classmethod
    def with_overrides(cls, **overrides: object) -> Settings:
        """Settings from the environment, non-None ``overrides`` (flow parameters) on top."""
        return cls(**{name: value for name, value in overrides.items() if value is not None})

    def resolved_snapshot_uri(self) -> str:
        """The snapshot table location, defaulting under ``data_dir``."""
        return self.snapshot_uri or str((self.data_dir / "snapshots").resolve())

    def resolved_quarantine_uri(self) -> str:
        """The quarantine table location, defaulting under ``data_dir``."""
        return self.quarantine_uri or str((self.data_dir / "quarantine").resolve())

    def resolved_index_uri(self) -> str:
        """The LanceDB folder, defaulting under ``data_dir``."""
        return self.index_uri or str((self.data_dir / "index").resolve())

    def audio_limits(self) -> AudioLimits:
        """The audio part alone, to hand to decoding tasks."""
        return AudioLimits(**{name: getattr(self, name) for name in AudioLimits.model_fields})

    def storage_options(self, table_uri: str) -> dict[str, str] | None:
        """deltalake storage options for a table on Azure (``az://``, ``abfs[s]://``), else None."""
        if table_uri.startswith(("az://", "abfs://", "abfss://")):
            from tasks.azure_storage import delta_storage_options

            return delta_storage_options(self)
        return None

    def model_settings(self) -> ModelSettings:
        """The model part alone, to hand to embedding tasks."""
        return ModelSettings(**{name: getattr(self, name) for name in ModelSettings.model_fields})
