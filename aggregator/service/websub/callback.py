"""The WebSub callback routes: GET and POST /websub/{callback_id} on the web app, answered
by the subscriber (verification of intent, deliveries).

This module must never decide whether a request is genuine (subscriber.py does) and never
read a delivery body past network.limits.max_bytes.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.responses import Response

from aggregator.models import GONE_STATUS
from aggregator.service.websub.subscriber import WebSubSubscriber

CALLBACK_PATH = "/websub/{callback_id}"
SIGNATURE_HEADER = "X-Hub-Signature"


def install_routes(app: Starlette, subscriber: WebSubSubscriber) -> None:
    """Answer the hubs at GET and POST /websub/{callback_id} on `app`."""

    async def websub_callback(request: Request) -> Response:
        callback_id = request.path_params["callback_id"]
        headers = {"Cache-Control": "no-store"}
        if request.method == "GET":
            challenge = subscriber.verify_intent(callback_id, request.query_params)
            if challenge is None:
                return PlainTextResponse("Not Found\n", status_code=404, headers=headers)
            return PlainTextResponse(challenge, headers=headers)
        body = await _capped_body(request, subscriber.config.network.limits.max_bytes)
        if body is None:
            return PlainTextResponse("Payload Too Large\n", status_code=413, headers=headers)
        status = await subscriber.receive(
            callback_id,
            body,
            request.headers.get("content-type"),
            request.headers.get(SIGNATURE_HEADER),
        )
        text = "Gone\n" if status == GONE_STATUS else "ok\n"
        return PlainTextResponse(text, status_code=status, headers=headers)

    app.router.add_route(
        CALLBACK_PATH, websub_callback, methods=["GET", "POST"], include_in_schema=False
    )


async def _capped_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to be longer than `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
