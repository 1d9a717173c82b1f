"""The Azure AI Search index definitions: the documents index (generated from the vector
settings), the side index that records which snapshot version each index reflects, and the part
of a definition that must match for an existing index to be reused."""

from __future__ import annotations

import posixpath

import pyarrow as pa
from azure.search.documents.indexes.models import (
    BinaryQuantizationCompression,
    HnswAlgorithmConfiguration,
    HnswParameters,
    RescoringOptions,
    ScalarQuantizationCompression,
    ScalarQuantizationParameters,
    SearchField,
    SearchFieldDataType,
    SearchIndex,
    SimpleField,
    VectorSearch,
    VectorSearchProfile,
)

from tasks.index.layouts import FILES, Layout
from tasks.model.constants import EMBEDDING_SIZE
from tasks.settings import SearchServiceSettings
from tasks.storage.segments import segment_vectors

VECTOR_FIELD = "embedding"
_PROFILE, _ALGORITHM, _COMPRESSION = "audio-hnsw", "hnsw", "audio-compression"


def index_definition(
    name: str, settings: SearchServiceSettings, layout: Layout = FILES
) -> SearchIndex:
    """The documents index: the layout's fields plus the HNSW vector field the settings
    describe."""
    fields = [*_fields(layout), _vector_field()]
    return SearchIndex(name=name, fields=fields, vector_search=_vector_search(settings))


def _fields(layout: Layout) -> list[SearchField]:
    """The layout's fields; the files layout keeps the order of indexes already deployed."""
    string, collection = SearchFieldDataType.String, SearchFieldDataType.Collection
    double, int32 = SearchFieldDataType.Double, SearchFieldDataType.Int32
    location = [
        SimpleField(name="key", type=string, key=True, filterable=True),
        SimpleField(name="source_uri", type=string, filterable=True),
        SimpleField(name="path", type=string, filterable=True, sortable=True),
        SimpleField(name="folder", type=string, filterable=True, facetable=True),
    ]
    tags = [
        SearchField(
            name="tags", type=collection(string), filterable=True, facetable=True, searchable=True
        ),
        SimpleField(name="tag_scores", type=collection(double)),
    ]
    version = SimpleField(name="snapshot_version", type=SearchFieldDataType.Int64, filterable=True)
    if layout.kind == "segments":
        return [
            *location,
            SimpleField(name="file_key", type=string, filterable=True),
            SimpleField(name="segment_index", type=int32, sortable=True),
            SimpleField(name="start_seconds", type=double, filterable=True, sortable=True),
            SimpleField(name="end_seconds", type=double),
            *tags,
            version,
        ]
    return [
        *location,
        SimpleField(name="duration_seconds", type=double, filterable=True, sortable=True),
        SimpleField(name="sample_rate", type=int32, filterable=True, facetable=True),
        SimpleField(name="channels", type=int32, filterable=True),
        SimpleField(
            name="last_modified",
            type=SearchFieldDataType.DateTimeOffset,
            filterable=True,
            sortable=True,
        ),
        *tags,
        SimpleField(name="model", type=string, filterable=True, facetable=True),
        SimpleField(name="checkpoint_sha256", type=string, filterable=True),
        version,
        # predicted labels, "<label set>=<label>" (tasks.classify.predicted_labels); added last,
        # so an index deployed before it gains it in place (Azure AI Search allows adding fields)
        SimpleField(
            name="predicted_labels", type=collection(string), filterable=True, facetable=True
        ),
    ]


def _vector_field() -> SearchField:
    return SearchField(
        name=VECTOR_FIELD,
        type=SearchFieldDataType.Collection(SearchFieldDataType.Single),
        searchable=True,
        vector_search_dimensions=EMBEDDING_SIZE,
        vector_search_profile_name=_PROFILE,
        # Not returned by queries: rebuilds read the tables, so the copy is not needed.
        stored=False,
    )


def _vector_search(settings: SearchServiceSettings) -> VectorSearch:
    """HNSW with the configured parameters, and the configured compression."""
    compressions = []
    if settings.search_quantization != "none":
        rescoring = RescoringOptions(
            enable_rescoring=True,
            default_oversampling=4.0,
            rescore_storage_method="preserveOriginals",
        )
        compressions.append(
            ScalarQuantizationCompression(
                compression_name=_COMPRESSION,
                parameters=ScalarQuantizationParameters(quantized_data_type="int8"),
                rescoring_options=rescoring,
            )
            if settings.search_quantization == "scalar"
            else BinaryQuantizationCompression(
                compression_name=_COMPRESSION, rescoring_options=rescoring
            )
        )
    return VectorSearch(
        algorithms=[
            HnswAlgorithmConfiguration(
                name=_ALGORITHM,
                parameters=HnswParameters(
                    m=settings.search_hnsw_m,
                    ef_construction=settings.search_hnsw_ef_construction,
                    ef_search=settings.search_hnsw_ef_search,
                    metric="cosine",
                ),
            )
        ],
        profiles=[
            VectorSearchProfile(
                name=_PROFILE,
                algorithm_configuration_name=_ALGORITHM,
                compression_name=_COMPRESSION if compressions else None,
            )
        ],
        compressions=compressions,
    )


def state_definition(name: str) -> SearchIndex:
    """The side index: one document per (snapshot table, physical index) with the version."""
    string = SearchFieldDataType.String
    return SearchIndex(
        name=name,
        fields=[
            SimpleField(name="id", type=string, key=True),
            SimpleField(name="snapshot_uri", type=string, filterable=True),
            SimpleField(name="index_name", type=string, filterable=True),
            SimpleField(name="snapshot_version", type=SearchFieldDataType.Int64),
            SimpleField(name="updated_at", type=SearchFieldDataType.DateTimeOffset),
        ],
    )


def vector_shape(index: SearchIndex) -> tuple:
    """What must match for an index to take our documents and answer our queries."""
    vector = next((f for f in index.fields if f.name == VECTOR_FIELD), None)
    if vector is None or index.vector_search is None:
        return (None,)
    profile = next(
        p for p in index.vector_search.profiles if p.name == vector.vector_search_profile_name
    )
    algorithm = next(
        a for a in index.vector_search.algorithms if a.name == profile.algorithm_configuration_name
    )
    compression = next(
        (
            c
            for c in index.vector_search.compressions or []
            if c.compression_name == profile.compression_name
        ),
        None,
    )
    parameters = algorithm.parameters
    return (
        vector.vector_search_dimensions,
        parameters.m,
        parameters.ef_construction,
        parameters.ef_search,
        str(parameters.metric),
        type(compression).__name__ if compression else None,
    )


def document(row: dict, table_version: int, layout: Layout = FILES) -> dict:
    """The search document of a table row (a snapshot row, or a segment row)."""
    common = {
        "key": row["key"],
        "source_uri": row["source_uri"],
        "path": row["path"],
        "folder": posixpath.dirname(row["path"]),
        "tags": list(row[layout.source_column("tags")] or []),
        "tag_scores": [float(s) for s in row[layout.source_column("tag_scores")] or []],
        "snapshot_version": table_version,
    }
    if layout.kind == "segments":
        vector = segment_vectors(pa.array([row["embedding"]], pa.binary()))[0]
        specific = {
            "file_key": row["file_key"],
            "segment_index": row["segment_index"],
            "start_seconds": row["start_seconds"],
            "end_seconds": row["end_seconds"],
        }
    else:
        vector = row["embedding"]
        modified = row["last_modified"]
        specific = {
            "duration_seconds": row["duration_seconds"],
            "sample_rate": row["sample_rate"],
            "channels": row["channels"],
            "last_modified": modified.isoformat() if modified else None,
            "model": row["model"],
            "checkpoint_sha256": row["checkpoint_sha256"],
            "predicted_labels": list(row.get("predicted_labels") or []),
        }
    # float32 carries ~7 significant digits; more only inflates the JSON
    return {**common, **specific, VECTOR_FIELD: [float(f"{x:.7g}") for x in vector]}
