"""The one place that decides between local and Azure: which source a URI names, where the
Delta tables live and how to reach them, and which vector index backend answers.

Everything else receives the objects made here (a source, a table, an index) and never asks
whether it is on a laptop or in the cloud.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tasks.settings import BlobSettings, Settings
from tasks.storage.blob_address import BlobAddress, BlobAddressError
from tasks.storage.delta import table_storage_options
from tasks.storage.quarantine import QuarantineTable
from tasks.storage.segments import SegmentsTable
from tasks.storage.snapshots import SnapshotTable
from tasks.storage.sources import (
    AudioSource,
    BlobSource,
    InvalidSourceError,
    LocalSource,
    file_uri_path,
)

if TYPE_CHECKING:
    from tasks.anomaly.store import AnomalyStore
    from tasks.catalogue_map.store import MapStore
    from tasks.classify.labelsets import LabelSets
    from tasks.classify.predicted_labels import PredictedLabels
    from tasks.classify.store import ClassifierStore, PredictionsTable
    from tasks.index.interface import VectorIndex
    from tasks.search.catalogue import Catalogue


def open_source(uri: str, settings: BlobSettings) -> AudioSource:
    """The source a URI names: a local folder, a ``file://`` URI or ``az://container/prefix``."""
    if uri.startswith("file://"):
        return LocalSource(file_uri_path(uri))
    if uri.startswith("az:"):
        return open_blob_source(uri, settings)
    if "://" in uri:
        raise InvalidSourceError(
            f"unsupported source URI {uri!r}: use a local folder, file:// or az://container/prefix"
        )
    return LocalSource(Path(uri))


def open_blob_source(uri: str, settings: BlobSettings) -> BlobSource:
    """The container (and prefix) ``az://container/prefix`` names, reached with ``settings``."""

    try:
        address = BlobAddress.from_source_uri(uri)
    except BlobAddressError as error:
        raise InvalidSourceError(str(error)) from None
    return _blob_source(address, settings)


def _blob_source(address: BlobAddress, settings: BlobSettings) -> BlobSource:
    from tasks.storage.azure import service_client

    client = service_client(settings).get_container_client(address.container)
    return BlobSource(client, settings, address.path)


def locate(item_uri: str, settings: BlobSettings) -> tuple[AudioSource, str]:
    """The source that can read an item URI, and the item's path within it (to re-read a file
    known from a snapshot row)."""
    if item_uri.startswith("file://"):
        absolute = file_uri_path(item_uri)
        return LocalSource(absolute.parent), absolute.name
    if item_uri.startswith("az://"):
        try:
            address = BlobAddress.from_item_uri(item_uri)
        except BlobAddressError as error:
            raise InvalidSourceError(str(error)) from None
        return _blob_source(BlobAddress(address.container), settings), address.path
    raise InvalidSourceError(f"unsupported item URI {item_uri!r}")


def snapshot_table(settings: Settings) -> SnapshotTable:
    """The configured snapshot table, local or on Azure."""
    uri = settings.resolved_snapshot_uri()
    return SnapshotTable(uri, table_storage_options(uri, settings))


def segments_table(settings: Settings) -> SegmentsTable:
    """The configured segments table, local or on Azure."""
    uri = settings.resolved_segments_uri()
    return SegmentsTable(uri, table_storage_options(uri, settings))


def open_catalogue(settings: Settings) -> Catalogue:
    """The configured snapshot (and segments) as search looks files up in them."""
    from tasks.search.catalogue import Catalogue

    return Catalogue(snapshot_table(settings), segments_table(settings))


def map_store(settings: Settings) -> MapStore:
    """The configured catalogue map tables (points, projections), local or on Azure."""
    from tasks.catalogue_map.store import MapStore

    uri = settings.resolved_map_uri()
    return MapStore(uri, table_storage_options(uri, settings))


def quarantine_table(settings: Settings) -> QuarantineTable:
    """The configured quarantine table, local or on Azure."""
    uri = settings.resolved_quarantine_uri()
    return QuarantineTable(uri, table_storage_options(uri, settings))


def anomaly_store(settings: Settings) -> AnomalyStore:
    """The configured anomaly tables (results, calibrations), local or on Azure."""
    from tasks.anomaly.store import AnomalyStore

    uri = settings.resolved_anomaly_uri()
    return AnomalyStore(uri, table_storage_options(uri, settings))


def label_sets(settings: Settings) -> LabelSets:
    """The label sets table (``<classify uri>/label_sets``), local or on Azure."""
    from tasks.classify.labelsets import LabelSets

    uri = settings.resolved_classify_uri().rstrip("/") + "/label_sets"
    return LabelSets(uri, table_storage_options(uri, settings))


def classifier_store(settings: Settings) -> ClassifierStore:
    """The trained classifiers (``<classify uri>/models``), local or on Azure."""
    from tasks.classify.store import ClassifierStore

    uri = settings.resolved_classify_uri().rstrip("/") + "/models"
    return ClassifierStore(uri, table_storage_options(uri, settings))


def predictions_table(settings: Settings, label_set: str) -> PredictionsTable:
    """The predictions of one label set (``<classify uri>/predictions/<label set>``)."""
    from tasks.classify.store import PredictionsTable

    uri = settings.resolved_classify_uri().rstrip("/") + f"/predictions/{label_set}"
    return PredictionsTable(uri, table_storage_options(uri, settings))


def predicted_labels_of_files(settings: Settings) -> PredictedLabels:
    """Every label set's current predictions, as index values (read per lookup)."""
    from tasks.classify.predicted_labels import PredictedLabels

    return PredictedLabels(
        predictions_table(settings, name) for name in label_sets(settings).names()
    )


def open_index(settings: Settings, segments: bool = False) -> VectorIndex:
    """The configured vector index backend (``AUDIO_EMBEDDINGS_INDEX_BACKEND``): of files, or of
    their segments."""
    from tasks.index.layouts import FILES, SEGMENTS

    layout = SEGMENTS if segments else FILES
    if settings.index_backend == "azure_search":
        from tasks.index.azure_search import AzureSearchIndex

        return AzureSearchIndex(settings, settings.index_name, layout=layout)
    from tasks.index.lancedb_index import LanceDBIndex

    return LanceDBIndex(
        settings.resolved_index_uri(),
        settings.index_name,
        ann_min_rows=settings.lancedb_ann_min_rows,
        nprobes=settings.lancedb_ann_nprobes,
        refine_factor=settings.lancedb_ann_refine_factor,
        layout=layout,
    )
