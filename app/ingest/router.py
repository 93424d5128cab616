"""POST /webhooks/{connection_id}: answer fast, and only once the data is committed."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.errors import PayloadTooLarge
from app.ingest.service import HandshakeResult, ingest_webhook
from app.runtime import Runtime

router = APIRouter(tags=["webhooks"])


class WebhookAccepted(BaseModel):
    event_ids: list[int]
    duplicate: bool
    inbound_event_id: int
    quarantined: bool = Field(
        default=False,
        description="signed, but the body could not be parsed: kept in quarantine for an "
        "operator to replay after a fix (answered 200 so the sender does not retry)",
    )
    reason: str | None = Field(default=None, description="why it is in quarantine")


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    too_large = PayloadTooLarge(
        f"body is over the {limit} byte limit",
        hint="raise GATEWAY_MAX_BODY_BYTES if such payloads are legitimate",
    )
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/webhooks/{connection_id}",
    status_code=202,
    summary="Receive a webhook",
    description="What a storefront or an ERP sends. The signature is checked with the "
    "connection's webhook secret (and `previous_webhook_secret` while one is configured), "
    "then the body is stored with its events atomically before the answer: 202 "
    "means committed. A re-sent webhook is 200 with `duplicate: true`, nothing stored twice; "
    "a signed body the connector cannot parse is kept in quarantine (200, `quarantined: "
    "true`; `/api/v1/quarantine`). Query parameters are passed to the connector (some "
    "senders sign or route with them).",
    response_model=WebhookAccepted,
    responses={
        200: {
            "description": "a re-sent webhook, already stored; or a signed body the parser "
            "could not handle, kept in quarantine (`quarantined: true`)"
        },
        401: {"description": "bad or missing signature"},
        404: {"description": "unknown connection"},
        413: {"description": "body over the limit"},
        400: {"description": "unparseable body (connections that refuse such bodies)"},
        422: {"description": "invalid body (connections that refuse such bodies)"},
    },
)
async def receive_webhook(connection_id: str, request: Request) -> Response:
    # The one hot endpoint leaves its transaction to the service instead of taking it from
    # a dependency: FastAPI's generator-dependency machinery cost ~10% of a webhook's CPU,
    # and an order webhook is written in one statement outside a transaction. The same
    # promise: committed (and queued after the commit) before the answer is built.
    rt: Runtime = request.app.state.runtime
    body = await _read_limited(request, rt.settings.max_body_bytes)
    result = await ingest_webhook(rt, connection_id, request.headers, body, request.query_params)
    if isinstance(result, HandshakeResult):
        return Response(result.body, result.status, media_type=result.content_type)
    # WebhookAccepted's fields, serialised directly: building the model to dump it again
    # cost ~4% of a webhook's CPU (tests/api check the answer against the model)
    body = orjson.dumps(
        {
            "event_ids": result.event_ids,
            "duplicate": result.duplicate,
            "inbound_event_id": result.inbound_event_id,
            "quarantined": result.quarantined is not None,
            "reason": result.quarantined,
        }
    )
    # 202: taken; 200: already stored, or kept in quarantine (taken, not processed)
    accepted = not result.duplicate and result.quarantined is None
    return Response(body, 202 if accepted else 200, media_type="application/json")
