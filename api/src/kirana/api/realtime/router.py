"""`GET /v1/ws` (the socket), `POST /v1/ws/ticket` (a one-connection ticket), `/asyncapi.json`.

Credentials are checked before the handshake is accepted (a ticket in `?ticket=`, or the access
token offered as the subprotocol `bearer.<token>` beside `kirana.v1`); nothing is allocated for a
refused client. A refused client still gets its handshake accepted and then closed with 1008
and a reason, because a browser cannot read the HTTP status of a failed handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from starlette.websockets import WebSocketDisconnect

from kirana.api.access.deps import CurrentUser, Public
from kirana.api.access.principal import Principal
from kirana.api.errors import KiranaError, Unauthorized
from kirana.api.realtime import asyncapi, hub, metrics, schemas, service
from kirana.api.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/ws", tags=["realtime"])
docs = APIRouter(tags=["realtime"])
PROTOCOL = "kirana.v1"
BEARER = "bearer."
_frames: TypeAdapter[schemas.Subscribe | schemas.Unsubscribe | schemas.Ping] = TypeAdapter(
    schemas.ClientFrame
)


@router.post("/ticket", response_model=schemas.TicketRead, status_code=201)
async def create_ticket(request: Request, principal: CurrentUser) -> schemas.TicketRead:
    """A ticket for one `GET /v1/ws?ticket=...` within `expires_in` seconds."""
    settings: Settings = request.app.state.settings
    if principal.session_id is None:
        raise Unauthorized("sign in with a session to open a socket")
    ticket = await service.issue(
        request.app.state.redis,
        user_id=principal.user_id,
        session_id=principal.session_id,
        ttl_s=settings.ws_ticket_ttl_s,
    )
    return schemas.TicketRead(ticket=ticket, expires_in=settings.ws_ticket_ttl_s)


@docs.get("/asyncapi.json", include_in_schema=False, dependencies=[Public])
async def asyncapi_document(request: Request) -> JSONResponse:
    return JSONResponse(asyncapi.document(request.app.version))


async def _authenticate(ws: WebSocket, settings: Settings) -> Principal:
    origin = ws.headers.get("origin")
    allowed = settings.ws_allowed_origins or settings.cors_origins
    if origin is not None and origin not in allowed:
        raise Unauthorized("this origin may not open sockets")
    access = ws.app.state.access
    ticket = ws.query_params.get("ticket")
    if ticket is not None:
        owner = await service.redeem(ws.app.state.redis, ticket)
        if owner is None:
            raise Unauthorized("unknown, used or expired ticket")
        return await hub.principal_for_session(access, owner[0], owner[1])
    for offered in ws.scope.get("subprotocols", []):
        if offered.startswith(BEARER):
            principal: Principal = await access.authenticate(offered[len(BEARER) :])
            return principal
    raise Unauthorized("send a ticket (?ticket=) or the access token as subprotocol bearer.<token>")


@router.websocket("")
async def socket(ws: WebSocket) -> None:
    settings: Settings = ws.app.state.settings
    the_hub: hub.Hub = ws.app.state.realtime
    subprotocol = PROTOCOL if PROTOCOL in ws.scope.get("subprotocols", []) else None
    refusal: tuple[int, str, str] | None = None
    principal: Principal | None = None
    if the_hub.draining or getattr(ws.app.state, "draining", False):
        refusal = (hub.RESTART, "server restarting: connect again", "draining")
    else:
        try:
            principal = await _authenticate(ws, settings)
        except KiranaError as exc:
            refusal = (hub.POLICY, exc.detail[:120], "credentials")
    conn = None
    if principal is not None:
        conn = the_hub.register(ws, principal)
        if conn is None:
            refusal = (hub.TRY_AGAIN, "too many sockets for this account", "per-user-cap")
    await ws.accept(subprotocol=subprotocol)
    if refusal is not None or conn is None:
        code, reason, label = refusal or (hub.POLICY, "refused", "other")
        metrics.REFUSED.labels(label).inc()
        await ws.close(code, reason)
        return
    metrics.ACCEPTED.inc()
    try:
        await _serve(the_hub, conn, settings)
    finally:
        the_hub.unregister(conn)


async def _serve(the_hub: hub.Hub, conn: hub.Connection, settings: Settings) -> None:
    reader = asyncio.create_task(_read(conn, settings.ws_max_frame_bytes))
    writer = asyncio.create_task(_write(the_hub, conn))
    closed = asyncio.create_task(conn.closed.wait())
    await asyncio.wait({reader, writer, closed}, return_when=asyncio.FIRST_COMPLETED)
    error = writer.exception() if writer.done() and not writer.cancelled() else None
    gone = isinstance(error, (WebSocketDisconnect, RuntimeError, OSError))  # the client left
    if error is not None and not gone and not conn.closed.is_set():
        # A subscribe or a send that raised (Redis unreachable, say): logged, and the socket
        # closed with "try again later" so the client reconnects and resumes from its seq.
        log.error("socket handler failed; closing it", exc_info=error)
        conn.kick(hub.TRY_AGAIN, "server error, reconnect")
    for task in (reader, writer, closed):
        task.cancel()
    for task in (reader, writer):
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if conn.closed.is_set():
        with contextlib.suppress(Exception):
            await conn.ws.close(conn.close_code, conn.close_reason)


async def _read(conn: hub.Connection, max_bytes: int) -> None:
    while True:
        try:
            text = await conn.ws.receive_text()
        except (WebSocketDisconnect, KeyError, RuntimeError):
            return
        if len(text) > max_bytes:
            conn.kick(1009, "frame too large")
            return
        try:
            frame = _frames.validate_json(text)
        except ValidationError as exc:
            conn.offer(("reply", _error("bad-frame", _first_error(exc))))
            continue
        if isinstance(frame, schemas.Ping):
            conn.offer(("reply", {"type": "pong"}))
        elif isinstance(frame, schemas.Unsubscribe):
            conn.offer(("unsubscribe", frame.channel))
        else:
            since = frame.since
            conn.offer(
                ("subscribe", frame.channel, since.epoch if since else None, since.seq if since else None)
            )


async def _write(the_hub: hub.Hub, conn: hub.Connection) -> None:
    while True:
        item = await conn.queue.get()
        await the_hub.handle(conn, item)


def _error(code: str, detail: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "detail": detail}


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return json.dumps(f"{where}: {err.get('msg', 'invalid')}")[1:-1][:200]
