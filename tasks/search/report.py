"""What a search run leaves in the Prefect UI: its ranked matches."""

from __future__ import annotations

from prefect.artifacts import create_table_artifact

from tasks.index.interface import SearchHit
from tasks.model.checkpoint import ResolvedCheckpoint


def publish_search_results(query: str, hits: list[SearchHit], model: ResolvedCheckpoint) -> None:
    """The ranked matches of a query as a table artifact."""
    create_table_artifact(
        [
            {
                "rank": i,
                "score": round(h.score, 4),
                "path": h.path,
                **(
                    {"from_s": round(h.start_seconds, 2), "to_s": round(h.end_seconds, 2)}
                    if h.start_seconds is not None
                    else {"duration_s": round(h.duration_seconds, 2)}
                ),
                "tags": ", ".join(h.tags[:3]),
            }
            for i, h in enumerate(hits, start=1)
        ],
        key="search-results",
        description=f"Matches for {query}. {model.note}",
    )
