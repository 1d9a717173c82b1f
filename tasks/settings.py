"""One settings object for the whole pipeline: every knob has a default and an environment variable.

Environment variables are the field names upper-cased with the prefix ``AUDIO_EMBEDDINGS_``
(for example ``AUDIO_EMBEDDINGS_BATCH_SIZE=16``). A ``.env`` file in the working directory is
read too. Flows and the CLI build one ``Settings`` at the edge and pass the parts each task needs.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tasks.model.constants import OFFICIAL_URL

ResampleOn = Literal["auto", "host", "device"]
Engine = Literal["auto", "torch", "onnxruntime"]


class AudioLimits(BaseSettings):
    """What the decoder accepts and how it windows (seconds, bytes, Hz)."""

    model_config = SettingsConfigDict(env_prefix="AUDIO_EMBEDDINGS_", extra="ignore")

    window_seconds: float = Field(10.0, gt=0.5, le=60.0, description="Window length (s)")
    hop_seconds: float | None = Field(
        None, gt=0.0, description="Hop between window starts (s); default: the window length"
    )
    segment_seconds: float = Field(
        1.0,
        gt=0.0,
        description="Length of the segments each window is split into, each with its own "
        "embedding from the same forward pass (s); must divide the window",
    )
    # 16 GiB holds a 24 h 44.1 kHz stereo 16-bit WAV (15.2 GB): long files are streamed.
    max_file_bytes: int = Field(16 << 30, gt=0, description="Largest accepted file (bytes)")
    max_duration_seconds: float = Field(24 * 3600.0, gt=0, description="Longest accepted file (s)")
    stream_above_seconds: float = Field(
        600.0,
        gt=0,
        description="Files longer than this are decoded and windowed block by block, so memory "
        "holds a few windows, not the file (s)",
    )
    min_sample_rate: int = Field(1_000, gt=0, description="Lowest accepted sample rate (Hz)")
    max_sample_rate: int = Field(768_000, gt=0, description="Highest accepted sample rate (Hz)")
    # Decoding cost and memory grow with channels x frames; a tiny compressed file can declare
    # hundreds of channels. Ambisonics and microphone arrays stay within 64.
    max_channels: int = Field(64, ge=1, le=1024, description="Most channels a file may have")
    # One LSB of 16-bit audio is -90.3 dBFS: a file whose peak stays below it holds no signal.
    silence_peak_dbfs: float = Field(-90.0, description="Peak below which a file is silent (dBFS)")

    @model_validator(mode="after")
    def _hop_within_window(self) -> AudioLimits:
        if self.hop_seconds is not None and self.hop_seconds > self.window_seconds:
            raise ValueError(
                "hop_seconds must not exceed window_seconds (windows would skip audio)"
            )
        return self

    @model_validator(mode="after")
    def _segments_divide_the_window(self) -> AudioLimits:
        parts = self.window_seconds / self.segment_seconds
        if parts < 1 or abs(parts - round(parts)) > 1e-6:
            raise ValueError(
                f"segment_seconds ({self.segment_seconds}) must divide window_seconds "
                f"({self.window_seconds}) into whole segments"
            )
        return self

    @property
    def hop(self) -> float:
        """Hop between window starts (s)."""
        return self.hop_seconds if self.hop_seconds is not None else self.window_seconds

    @property
    def segments_per_window(self) -> int:
        return round(self.window_seconds / self.segment_seconds)


class BlobSettings(BaseSettings):
    """How to reach the storage account that holds audio (and, optionally, the Delta tables).

    First configured wins: a connection string (Azurite, development); an account URL plus a SAS
    token; an account URL alone (``DefaultAzureCredential``: managed or workload identity,
    ``az login``; the identity needs "Storage Blob Data Contributor").
    """

    model_config = SettingsConfigDict(env_prefix="AUDIO_EMBEDDINGS_", extra="ignore")

    blob_connection_string: SecretStr | None = Field(None, description="Connection string")
    blob_account_url: str | None = Field(
        None, description="https://<account>.blob.core.windows.net"
    )
    blob_sas_token: SecretStr | None = Field(None, description="SAS token (with account URL)")
    blob_retry_total: int = Field(6, ge=0, description="Retries of a failed storage request")


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
    checkpoint_url: str = Field(
        OFFICIAL_URL,
        description="Where the one-time download fetches the official checkpoint (a mirror, a "
        "Blob URL with a SAS); the file must still hash to the official sha256",
    )
    device: str = Field("auto", description="'auto', 'cpu', 'cuda' or 'cuda:N'")
    batch_size: int = Field(8, gt=0, le=1024, description="Windows per forward pass")
    engine: Engine = Field(
        "auto",
        description="What runs the model: 'torch', 'onnxruntime' (CPU, fp32: the trunk exported "
        "once per checkpoint) or 'auto' (ONNX Runtime on a CPU, torch on a GPU)",
    )
    precision: Literal["fp32", "fp16", "bf16"] = Field(
        "fp32", description="Autocast precision of the forward pass (fp16/bf16: GPUs)"
    )
    top_tags: int = Field(5, ge=0, le=527, description="AudioSet tags kept per file")
    resample_on: ResampleOn = Field(
        "auto",
        description="Where audio is resampled to 32 kHz: 'host' (soxr HQ, in the reader threads), "
        "'device' (the model's device: a launch per file; for hosts with few cores per GPU) or "
        "'auto' (the host: measured faster on a 16-core GPU host)",
    )

    @model_validator(mode="before")
    @classmethod
    def _deprecated_names(cls, data: object) -> object:
        """AUDIO_EMBEDDINGS_TOP_LABELS, the old name of AUDIO_EMBEDDINGS_TOP_TAGS, still works
        for one release, with a warning."""
        old = os.environ.get("AUDIO_EMBEDDINGS_TOP_LABELS")
        if isinstance(data, dict) and old is not None and "top_tags" not in data:
            warnings.warn(
                "AUDIO_EMBEDDINGS_TOP_LABELS is deprecated: set AUDIO_EMBEDDINGS_TOP_TAGS",
                DeprecationWarning,
                stacklevel=2,
            )
            data = {**data, "top_tags": old}
        return data


class SearchServiceSettings(BaseSettings):
    """Azure AI Search: where the service is, how to authenticate, and the vector index shape.

    HNSW defaults are the service's own (m 4, efConstruction 400, efSearch 500, cosine): the
    least memory per vector; raise m (up to 10) and efSearch if the recall benchmark on your data
    asks for it. Quantization cuts vector storage 4x (scalar int8) or 32x (binary), with
    rescoring on the original vectors to win back recall.
    """

    model_config = SettingsConfigDict(env_prefix="AUDIO_EMBEDDINGS_", extra="ignore")

    search_endpoint: str | None = Field(None, description="https://<service>.search.windows.net")
    search_api_key: SecretStr | None = Field(
        None, description="Admin key; unset: DefaultAzureCredential (RBAC)"
    )
    search_hnsw_m: int = Field(4, ge=4, le=10, description="HNSW graph degree")
    search_hnsw_ef_construction: int = Field(400, ge=100, le=1000, description="HNSW build list")
    search_hnsw_ef_search: int = Field(500, ge=100, le=1000, description="HNSW query list")
    search_quantization: Literal["none", "scalar", "binary"] = Field(
        "none", description="Vector compression, with rescoring"
    )
    search_batch_max_documents: int = Field(1000, ge=1, le=1000, description="Actions per request")
    search_batch_max_bytes: int = Field(
        15 * 1024 * 1024, gt=0, le=16 * 1024 * 1024, description="JSON bytes per request"
    )
    search_max_attempts: int = Field(6, ge=1, description="Tries per document (409/422/503)")
    search_retry_initial_seconds: float = Field(1.0, ge=0, description="First backoff (s)")


class ServeSettings(BaseSettings):
    """The search service (``audio-embeddings serve``): where it listens, who may call it, and
    how it batches queries.

    It listens on loopback unless told otherwise; on any other address it refuses to start
    without an API key or a Microsoft Entra ID tenant and audience to check tokens against.
    """

    model_config = SettingsConfigDict(env_prefix="AUDIO_EMBEDDINGS_", extra="ignore")

    serve_host: str = Field("127.0.0.1", description="Address to listen on")
    serve_port: int = Field(8000, ge=1, le=65535, description="Port to listen on")
    serve_api_key: SecretStr | None = Field(
        None, description="API key callers send as X-API-Key (or log in with, on the page)"
    )
    serve_entra_tenant_id: str | None = Field(
        None, description="Microsoft Entra ID tenant whose bearer tokens are accepted"
    )
    serve_entra_audience: str | None = Field(
        None, description="The audience those tokens must carry (the app's client id or URI)"
    )
    serve_entra_jwks_url: str | None = Field(
        None,
        description="Where the tenant's signing keys are (default: the public cloud's "
        "login.microsoftonline.com/<tenant>/discovery/v2.0/keys)",
    )
    serve_max_upload_bytes: int = Field(
        64 << 20, gt=0, description="Largest query audio accepted (bytes)"
    )
    # With 8 clients, 5 ms let the replies of one batch come back while the next ran (4 queries
    # a pass); 40 ms fills every pass (benchmarks/results/vm-serve.json). A lone query pays it.
    serve_batch_wait_ms: float = Field(
        40.0,
        ge=0,
        le=1_000,
        description="How long a query waits for others to share its forward pass (ms)",
    )
    serve_max_batch_windows: int = Field(
        32, gt=0, le=1_024, description="Most windows in one shared forward pass"
    )
    # A query is a sound, not a recording: a minute is 6 of the model's windows, about a second
    # of CPU time; a 3-hour file would be 1,080 and hold the model for minutes.
    serve_max_query_seconds: float = Field(
        60.0,
        gt=0,
        le=3_600,
        description="Longest query audio (s), checked from the file's header before decoding",
    )
    serve_max_spectrogram_seconds: float = Field(
        600.0,
        gt=0,
        le=86_400,
        description="Longest catalogue file the page's spectrograms are drawn for (s; from the "
        "header, before decoding): a 10-minute file takes about 1.5 s of CPU",
    )
    serve_max_decodes: int = Field(
        2, ge=1, le=256, description="Query files decoded at once (the rest wait in the queue)"
    )
    serve_max_queued: int = Field(
        16,
        ge=0,
        le=10_000,
        description="Query files waiting to be decoded or for the model, past which a query is "
        "answered 503 with Retry-After at once",
    )
    serve_request_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        description="A query not answered within this time gets 504 and its work is dropped "
        "(s); an upload still arriving by then gets 408",
    )
    serve_access_log: Literal["off", "json"] = Field(
        "off",
        description="Access log: none, or one JSON line per request on stderr, with its "
        "request id (X-Request-ID), route, status and duration",
    )


class Settings(AudioLimits, ModelSettings, BlobSettings, SearchServiceSettings, ServeSettings):
    """Everything: audio limits, model, Azure Blob access, where snapshots and the index live."""

    model_config = SettingsConfigDict(
        env_prefix="AUDIO_EMBEDDINGS_", env_file=".env", extra="ignore"
    )

    data_dir: Path = Field(
        Path(".audio-embeddings"), description="Root of the embedded default stores"
    )
    snapshot_uri: str | None = Field(None, description="Delta table of embeddings")
    segments_uri: str | None = Field(
        None, description="Delta table of segment embeddings (default: beside the snapshot)"
    )
    map_uri: str | None = Field(
        None,
        description="Folder (or az://) of the catalogue map tables (default: beside the snapshot)",
    )
    quarantine_uri: str | None = Field(None, description="Delta table of rejected inputs")
    anomaly_uri: str | None = Field(None, description="Folder (or az://) of the anomaly tables")
    classify_uri: str | None = Field(
        None, description="Folder (or az://) of the label sets, classifiers and predictions"
    )
    classify_min_confidence: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="A predicted label below this probability is marked abstained, not given",
    )
    classify_retrain_after_labels: int = Field(
        10,
        ge=0,
        description="The service retrains a label set's classifier once this many labels were "
        "given or taken back on the page since it was trained (0: only when asked)",
    )
    index_backend: Literal["lancedb", "azure_search"] = Field(
        "lancedb", description="Vector index: LanceDB folder or Azure AI Search"
    )
    index_uri: str | None = Field(None, description="LanceDB folder of the vector index")
    # Exact search grows linearly (about 50-90 ms at 10,000 rows); from there the IVF_RQ index
    # builds in seconds and answers in a few ms (benchmarks/results/vm-search.json).
    lancedb_ann_min_rows: int = Field(
        10_000,
        ge=0,
        description="Build the ANN index (IVF_RQ) once the table has this many rows; 0: exact "
        "search only",
    )
    lancedb_ann_nprobes: int = Field(40, ge=1, description="IVF partitions searched per query")
    lancedb_ann_refine_factor: int = Field(
        20, ge=1, description="Candidates re-ranked on the full vectors per result"
    )
    index_name: str = Field(
        "audio-embeddings", pattern=r"^[a-z0-9][a-z0-9-]*$", description="Index (or alias) name"
    )
    shard_size: int = Field(64, gt=0, description="Files per Prefect task")
    shards_in_flight: int = Field(
        4,
        gt=0,
        description="Shards submitted ahead of the results (bounds memory; on Dask set it to "
        "about twice the workers)",
    )
    vacuum_retention_hours: int = Field(
        168,
        ge=0,
        description="Table upkeep deletes unreferenced files older than this (h); files the index "
        "and anomaly scans still diff from are kept whatever their age",
    )
    # A commit takes about a second whatever its size and overlaps with the shards still
    # embedding, but delta-rs' MERGE needs about 100 KB of memory per committed row
    # (benchmarks/results/vm-data-path.json). 2,000 files keep a commit near 200 MB; a shard is
    # never split, so a 4,096-file GPU shard commits 4,096 (+400 MB). 60 s bound the work a
    # killed CPU run loses (on a GPU, the file count does).
    commit_every_files: int = Field(
        2_000, gt=0, description="Commit a snapshot version after this many embedded files"
    )
    commit_every_seconds: float = Field(
        60.0, gt=0, description="... or after this many seconds, whichever comes first (s)"
    )
    dask_address: str | None = Field(
        None, description="Dask scheduler (tcp://host:8786): shards run on its workers"
    )
    prepare_workers: int = Field(
        default_factory=lambda: min(64, max(2, len(os.sched_getaffinity(0)) // 2)),
        gt=0,
        le=64,
        description="Threads per shard that download and decode ahead of the model (default: "
        "half the usable cores, at least 2: the flow runs two shards at a time)",
    )

    @classmethod
    def with_overrides(cls, **overrides: object) -> Settings:
        """Settings from the environment, non-None ``overrides`` (flow parameters) on top."""
        return cls(**{name: value for name, value in overrides.items() if value is not None})

    def resolved_snapshot_uri(self) -> str:
        """The snapshot table location, defaulting under ``data_dir``."""
        return self.snapshot_uri or str((self.data_dir / "snapshots").resolve())

    def resolved_segments_uri(self) -> str:
        """The segments table location: ``<snapshot uri>-segments`` unless set."""
        return self.segments_uri or self.resolved_snapshot_uri().rstrip("/") + "-segments"

    def resolved_map_uri(self) -> str:
        """Where the catalogue map lives: ``map_uri`` or ``<snapshot uri>-map``."""
        return self.map_uri or self.resolved_snapshot_uri().rstrip("/") + "-map"

    def resolved_quarantine_uri(self) -> str:
        """The quarantine table location, defaulting under ``data_dir``."""
        return self.quarantine_uri or str((self.data_dir / "quarantine").resolve())

    def resolved_anomaly_uri(self) -> str:
        """Where anomaly results and calibrations live, defaulting under ``data_dir``."""
        return self.anomaly_uri or str((self.data_dir / "anomaly").resolve())

    def resolved_classify_uri(self) -> str:
        """Where label sets, classifiers and predictions live, defaulting under ``data_dir``."""
        return self.classify_uri or str((self.data_dir / "classify").resolve())

    def resolved_index_uri(self) -> str:
        """The LanceDB folder, defaulting under ``data_dir``."""
        return self.index_uri or str((self.data_dir / "index").resolve())

    def audio_limits(self) -> AudioLimits:
        """The audio part alone, to hand to decoding tasks."""
        return AudioLimits(**{name: getattr(self, name) for name in AudioLimits.model_fields})

    def serve_settings(self) -> ServeSettings:
        """The service part alone."""
        return ServeSettings(**{name: getattr(self, name) for name in ServeSettings.model_fields})

    def model_settings(self) -> ModelSettings:
        """The model part alone, to hand to embedding tasks."""
        return ModelSettings(**{name: getattr(self, name) for name in ModelSettings.model_fields})
