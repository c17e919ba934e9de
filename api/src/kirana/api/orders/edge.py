"""Hand well-formed `POST /v1/orders` requests to group commit before they enter the framework.

Installed by the app factory; it acts while group commit is on (`KIRANA_ORDER_BATCH_MAX` > 0,
`app.state.order_batcher` set) and passes every request through when it is off.

Order placement is the shop's hottest write, and with group commit the database part of an
order is cheap; what is left is mostly the framework around it: matching the path against every
route, solving the dependency graph (settings, session, principal, permission, key) and
wrapping the answer. This middleware sits inside the request-context and CORS middleware
(request id, body limit, access log, metrics and CORS headers apply as to any route) and does
the route's work directly, but only for a request the route would accept as it is:

- a bearer token the access runtime accepts, of a caller holding `orders:create` (the very
  checks `Require("orders:create")` makes);
- a well-formed `Idempotency-Key`;
- a JSON body that `PlaceOrder` validates.

Such a request becomes the same `Placement` and the same key claim as in the route
(`orders.placement.admit`, which the route calls too) and joins the next batch
(`orders.batch`). Everything else goes to the route with its body replayed untouched, so every
refusal (401, 403, 422, 428, 413, ...) is the route's own answer; so do the orders the batch
hands back (a retry of a known key, a failed batch), which the route places alone.
"""

from __future__ import annotations

import json
from collections import deque

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kirana.api import errors, problems
from kirana.api.access.deps import demand
from kirana.api.access.principal import Principal
from kirana.api.idempotency import service as idempotency
from kirana.api.middleware import RouteLabel, authenticated, parsed_as_json
from kirana.api.orders import placement
from kirana.api.orders import schemas as s
from kirana.api.orders.batch import OrderBatcher

PLACE_PATH = placement.PLACE_PATH
PERMISSION = "orders:create"


class _Refused(Exception):
    """The route must answer this request itself."""


class BatchedOrderMiddleware:
    def __init__(self, app: ASGIApp, *, policy: placement.Policy) -> None:
        self.app = app
        self.policy = policy
        self.route = RouteLabel(PLACE_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PLACE_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        batcher: OrderBatcher | None = getattr(scope["app"].state, "order_batcher", None)
        if batcher is None:
            await self.app(scope, receive, send)
            return
        messages, body = await _read_body(receive)
        try:
            if body is None:
                raise _Refused
            principal, request, wanted = await self._accept(scope, body)
        except _Refused:
            await self.app(scope, _replay(messages, receive), send)
            return
        try:
            answer = await batcher.place(wanted, request)
        except errors.KiranaError as exc:  # the key is held by another request: 409
            answer = problems.problem_of(exc, instance=PLACE_PATH)
        if answer is None:  # a retry of a known key, or a failed batch: placed alone
            scope.setdefault("state", {})["principal"] = principal
            await self.app(scope, _replay(messages, receive), send)
            return
        scope["route"] = self.route
        await answer(scope, receive, send)

    async def _accept(
        self, scope: Scope, body: bytes
    ) -> tuple[Principal, idempotency.Request, placement.Placement]:
        headers = Headers(scope=scope)
        authorization = headers.get("authorization")
        key = headers.get("idempotency-key")
        if not authorization or key is None or not body or not parsed_as_json(headers.get("content-type")):
            raise _Refused
        principal = await authenticated(scope, authorization)
        if principal is None:
            raise _Refused
        try:
            demand(principal, PERMISSION)
            idempotency.validate_key(key)
        except errors.KiranaError as exc:
            raise _Refused from exc
        try:
            data = s.PlaceOrder.model_validate(json.loads(body))
        except Exception as exc:  # invalid, or too deeply nested to parse: the route answers it
            raise _Refused from exc
        client = scope.get("client")
        request, wanted = placement.admit(
            user_id=principal.user_id,
            key=key,
            data=data,
            policy=self.policy,
            client=client[0] if client else None,
        )
        return principal, request, wanted


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """Every message of the request body, and the body (None if the client went away)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive channel that yields `messages` again, then the client's."""
    pending = deque(messages)

    async def replayed() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replayed
