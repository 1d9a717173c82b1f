"""The Azure AI Search index definitions: the documents index (generated from the vector
settings), the side index that records which snapshot version each index reflects, and the part
of a definition that must match for an existing index to be reused."""

from __future__ import annotations

import posixpath

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

from tasks.model.constants import EMBEDDING_SIZE
from tasks.settings import SearchServiceSettings

VECTOR_FIELD = "embedding"
#: Fields a query returns (the vector is not stored, see below).
RETURNED_FIELDS = ["key", "source_uri", "path", "duration_seconds", "labels"]
_PROFILE, _ALGORITHM, _COMPRESSION = "audio-hnsw", "hnsw", "audio-compression"


def index_definition(name: str, settings: SearchServiceSettings) -> SearchIndex:
    """The documents index: snapshot fields plus the HNSW vector field the settings describe."""
    string, collection = SearchFieldDataType.String, SearchFieldDataType.Collection
    fields = [
        SimpleField(name="key", type=string, key=True, filterable=True),
        SimpleField(name="source_uri", type=string, filterable=True),
        SimpleField(name="path", type=string, filterable=True, sortable=True),
        SimpleField(name="folder", type=string, filterable=True, facetable=True),
        SimpleField(
            name="duration_seconds", type=SearchFieldDataType.Double, filterable=True, sortable=True
        ),
        SimpleField(
            name="sample_rate", type=SearchFieldDataType.Int32, filterable=True, facetable=True
        ),
        SimpleField(name="channels", type=SearchFieldDataType.Int32, filterable=True),
        SimpleField(
            name="last_modified",
            type=SearchFieldDataType.DateTimeOffset,
            filterable=True,
            sortable=True,
        ),
        SearchField(
            name="labels", type=collection(string), filterable=True, facetable=True, searchable=True
        ),
        SimpleField(name="label_scores", type=collection(SearchFieldDataType.Double)),
        SimpleField(name="model", type=string, filterable=True, facetable=True),
        SimpleField(name="checkpoint_sha256", type=string, filterable=True),
        SimpleField(name="snapshot_version", type=SearchFieldDataType.Int64, filterable=True),
        SearchField(
            name=VECTOR_FIELD,
            type=collection(SearchFieldDataType.Single),
            searchable=True,
            vector_search_dimensions=EMBEDDING_SIZE,
            vector_search_profile_name=_PROFILE,
            # Not returned by queries: rebuilds read the snapshot, so the copy is not needed.
            stored=False,
        ),
    ]
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
    vector_search = VectorSearch(
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
    return SearchIndex(name=name, fields=fields, vector_search=vector_search)


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


def document(row: dict, snapshot_version: int) -> dict:
    """The search document of a snapshot row."""
    modified = row["last_modified"]
    return {
        "key": row["key"],
        "source_uri": row["source_uri"],
        "path": row["path"],
        "folder": posixpath.dirname(row["path"]),
        "duration_seconds": row["duration_seconds"],
        "sample_rate": row["sample_rate"],
        "channels": row["channels"],
        "last_modified": modified.isoformat() if modified else None,
        "labels": list(row["labels"] or []),
        "label_scores": [float(s) for s in row["label_scores"] or []],
        "model": row["model"],
        "checkpoint_sha256": row["checkpoint_sha256"],
        "snapshot_version": snapshot_version,
        # float32 carries ~7 significant digits; more only inflates the JSON
        VECTOR_FIELD: [float(f"{x:.7g}") for x in row["embedding"]],
    }
