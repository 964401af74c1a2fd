"""``GET /metrics``: the service's metrics in Prometheus's text format (``api.metrics``),
for an admin key; or without a key on an address of its own (``api.metrics_address``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from api.deps import Caller
from api.schemas import problems

router = APIRouter(tags=["operations"])

TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "metrics"}


@router.get("/metrics", response_class=Response, responses={200: TEXT, **problems(401, 403)})
async def metrics(request: Request, caller: Caller) -> Response:
    """Prometheus metrics: requests by route template and status, latency, writes,
    refusals, read-audit records, the chain's head, the newest checkpoint's age, a views
    rebuild's progress, whether the schema is current. No personal data in any label."""
    body = await request.app.state.metrics.exposition()
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
