"""What operators watch: ``/healthz`` (open, for probes) and ``/metrics`` (Prometheus, with the
API's authentication)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from tasks.serve.dependencies import Service, authenticated

router = APIRouter()


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(authenticated)])
def metrics_page(service: Service) -> Response:
    """Prometheus metrics: requests, latency, decode and model time, queues, rejections,
    the index's rows and the snapshot's version."""
    metrics = service.metrics
    return Response(metrics.render(), media_type=metrics.content_type)


@router.get("/healthz")
def healthz(service: Service) -> dict:
    return {"status": "ok", **service.health()}
