"""Which ingest runs did not finish, from the Prefect server: an ingest's run id is its flow run
id, and a run killed outright stays Running there (or is marked Crashed), never Completed."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

#: Flow run ids asked about per API request.
_PAGE = 200


def unfinished_runs(run_ids: Iterable[str]) -> set[str]:
    """The run ids among ``run_ids`` whose flow run exists on this Prefect server and is not
    Completed (ids that are not flow runs of this server are left out)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    ids = [uuid.UUID(run) for run in run_ids if _is_uuid(run)]
    unfinished: set[str] = set()
    with get_client(sync_client=True) as client:
        for start in range(0, len(ids), _PAGE):
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=ids[start : start + _PAGE]),
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(not_any_=[StateType.COMPLETED])
                    ),
                )
            )
            unfinished.update(str(run.id) for run in runs)
    return unfinished


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
