"""The `Idempotent` route dependency: runs a unit of work under an Idempotency-Key.

Routers of unsafe cart, checkout and order endpoints call `await idem.run(work, body=...)`
instead of using `SessionDep`: `run` owns the transaction, so the key, the effect and the
stored response commit together in one transaction, and the response is only sent after that
commit succeeded.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from starlette.responses import Response

from kirana.api import errors, problems
from kirana.api.access.deps import get_principal
from kirana.api.access.principal import Principal
from kirana.api.db.engine import Database
from kirana.api.deps import get_database, get_settings
from kirana.api.idempotency import service as idempotency
from kirana.api.inputs import Text
from kirana.api.settings import Settings

JSON = "application/json"
REPLAYED = "Idempotent-Replayed"

Work = Callable[[Any], Awaitable[Any]]


def _render(result: Any) -> bytes:
    if isinstance(result, BaseModel):
        return result.model_dump_json().encode()
    import json

    return json.dumps(jsonable_encoder(result), separators=(",", ":")).encode()


@dataclass
class Idempotent:
    db: Database
    request: Request
    key: str | None
    owner: str
    ttl: timedelta

    def with_owner(self, owner: str) -> Idempotent:
        """Scope keys to a guest cart when there is no signed-in user."""
        return Idempotent(self.db, self.request, self.key, owner, self.ttl)

    def required_key(self) -> str:
        """The request's Idempotency-Key; 428 when it has none."""
        if self.key is None:
            raise idempotency.KeyRequired(
                "this endpoint needs an Idempotency-Key header (a fresh UUID per attempt "
                "to buy, reused on retries)"
            )
        return self.key

    def request_for(self, body: Any) -> idempotency.Request:
        """What the key is claimed for: this request's method, path and body (fingerprinted)."""
        assert self.key is not None
        payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
        method, path = self.request.method, self.request.url.path
        return idempotency.request_of(owner=self.owner, key=self.key, method=method, path=path, body=payload)

    async def earlier(self, body: Any) -> Response | None:
        """The stored answer for this key, if the request was answered before; 422 when the key
        was used for a different request. Call before an effect outside the database (money
        asked of Razorpay) so a reused key is refused before it, not after; `run` still claims
        the key, so a concurrent first attempt is caught there."""
        if self.key is None:
            return None
        async with self.db.session() as session:
            stored = await idempotency.peek(session, self.request_for(body))
        return None if stored is None else _replay(stored)

    async def run(
        self,
        work: Work,
        *,
        body: Any = None,
        status_code: int = 200,
        required: bool = False,
        headers: dict[str, str] | None = None,
        claim_for: idempotency.Request | None = None,
        location: Callable[[Any], str] | None = None,
    ) -> Response:
        """Run `work(session)` once per key; replay its response for retries. The key is
        claimed for `claim_for` when given (a route that admits its requests itself, as order
        placement does), else for this request's method, path and `body`. `location(result)`
        is the created resource's URL, sent (and stored for replays) as `Location`."""
        response_headers = dict(headers or {})
        if self.owner == idempotency.ANONYMOUS and claim_for is None:
            # Nothing only this caller holds (no user, no cart token) could scope the key: any
            # other guest could send the same one and be replayed this answer (a new cart's
            # secret token). Such requests run as if they had no key.
            self.key = None
        if self.key is None and claim_for is None:
            if required:
                self.required_key()
            async with self.db.session() as session:
                result = await work(session)
            if location is not None:
                response_headers["Location"] = location(result)
            return Response(_render(result), status_code, response_headers, media_type=JSON)

        req = claim_for or self.request_for(body)
        failed: errors.KiranaError | None = None
        try:
            async with self.db.session() as session:  # one transaction: key, work and answer
                claim = await idempotency.claim(session, req, ttl=self.ttl)
                if isinstance(claim, idempotency.Stored):
                    return _replay(claim)
                try:
                    result = await work(session)
                except errors.KiranaError as exc:
                    failed = exc
                    raise  # roll the work back
                content = _render(result)
                if location is not None:
                    response_headers["Location"] = location(result)
                answer = success_answer(claim.id, status_code, content, response_headers)
                await idempotency.complete(session, answer)
        except errors.KiranaError as exc:
            if exc is not failed:
                raise  # about the key itself (409 in use, 422 reused): nothing to store
            return await self._answer_error(exc, req)
        return Response(content, status_code, response_headers, media_type=JSON)

    async def _answer_error(self, exc: errors.KiranaError, req: idempotency.Request) -> Response:
        """The problem the work raised; a verdict on the request's content (4xx other than
        401, 403 and 429) is stored under the key so retries get the same answer."""
        problem = problems.problem_of(exc, instance=req.path)
        if not idempotency.is_verdict(exc):
            return problem
        async with self.db.session() as session:
            try:
                claim = await idempotency.claim(session, req, ttl=self.ttl)
            except errors.KiranaError:
                return problem  # a retry is running meanwhile; it records its own answer
            if isinstance(claim, idempotency.Claimed):
                await idempotency.complete(session, problem_answer(claim.id, exc, problem))
        return problem


def success_answer(
    claim_id: uuid.UUID, status: int, content: bytes, headers: dict[str, str]
) -> idempotency.Answer:
    """What is stored under a key for a JSON answer (`content`, sent with `headers`)."""
    return idempotency.Answer(claim_id, status, content, {**headers, "content-type": JSON})


def problem_answer(claim_id: uuid.UUID, exc: errors.KiranaError, problem: Response) -> idempotency.Answer:
    """What is stored under a key for a verdict (`problem`: `problems.problem_of(exc)`)."""
    headers = {**exc.headers, "content-type": problems.PROBLEM_JSON}
    return idempotency.Answer(claim_id, exc.status, bytes(problem.body), headers)


def _replay(stored: idempotency.Stored) -> Response:
    headers = {k: v for k, v in stored.headers.items() if k.lower() != "content-type"}
    media = stored.headers.get("content-type", JSON)
    return Response(stored.body, stored.status, {**headers, REPLAYED: "true"}, media_type=media)


@errors.raises(idempotency.KeyInUse, idempotency.KeyReused, idempotency.KeyMalformed)
async def idempotent(
    request: Request,
    db: Annotated[Database, Depends(get_database)],
    settings: Annotated[Settings, Depends(get_settings)],
    principal: Annotated[Principal | None, Depends(get_principal)],
    idempotency_key: Annotated[Text | None, Header(alias="Idempotency-Key")] = None,
) -> Idempotent:
    key = idempotency.validate_key(idempotency_key) if idempotency_key is not None else None
    owner = idempotency.owner_of(principal.user_id if principal else None)
    return Idempotent(db, request, key, owner, timedelta(hours=settings.idempotency_ttl_hours))


@errors.raises(idempotency.KeyRequired)
async def idempotent_required(idem: Annotated[Idempotent, Depends(idempotent)]) -> Idempotent:
    """`idempotent` for routes that refuse to run without a key (428): buying, refunding."""
    idem.required_key()
    return idem


IdempotentDep = Annotated[Idempotent, Depends(idempotent)]
IdempotentRequiredDep = Annotated[Idempotent, Depends(idempotent_required)]
