"""The `Idempotent` route dependency: runs a unit of work under an Idempotency-Key.

Routers of unsafe cart, checkout and order endpoints call `await idem.run(work, body=...)`
instead of using `SessionDep`: `run` owns the transaction so the stored response commits with
the effect, and the response is only sent after the commit succeeded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from kirana.api import errors
from kirana.api.access.deps import get_principal
from kirana.api.access.principal import Principal
from kirana.api.db.engine import Database
from kirana.api.deps import get_database, get_session, get_settings
from kirana.api.idempotency import service
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

    async def run(
        self,
        work: Work,
        *,
        body: Any = None,
        status_code: int = 200,
        required: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Run `work(session)` once per key; replay its response for retries."""
        response_headers = dict(headers or {})
        if self.key is None:
            if required:
                raise service.KeyRequired(
                    "this endpoint needs an Idempotency-Key header (a fresh UUID per attempt "
                    "to buy, reused on retries)"
                )
            async with self.db.session() as session:
                result = await work(session)
            return Response(_render(result), status_code, response_headers, media_type=JSON)

        method, path = self.request.method, self.request.url.path
        payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
        fp = service.fingerprint(method=method, path=path, body=payload)
        args = {"owner": self.owner, "key": self.key, "fingerprint": fp, "method": method, "path": path}
        claim: service.Claimed | service.Stored | None
        async with self.db.autocommit() as conn:
            claim = await service.try_claim(conn, **args, ttl=self.ttl)
        if claim is None:  # a retry (or a reuse): decide under the row lock
            async with self.db.session() as session:
                claim = await service.claim(session, **args, ttl=self.ttl)
        if isinstance(claim, service.Stored):
            stored_headers = {k: v for k, v in claim.headers.items() if k.lower() != "content-type"}
            media = claim.headers.get("content-type", JSON)
            return Response(claim.body, claim.status, {**stored_headers, REPLAYED: "true"}, media_type=media)

        try:
            async with self.db.session() as session:
                result = await work(session)
                content = _render(result)
                await service.complete(
                    session,
                    claim_id=claim.id,
                    status=status_code,
                    body=content,
                    headers={**response_headers, "content-type": JSON},
                )
        except errors.KiranaError as exc:
            problem = errors.problem(
                exc.status,
                title=exc.title,
                detail=exc.detail,
                code=exc.code,
                instance=path,
                extra=exc.extra,
                headers=exc.headers,
            )
            if exc.status in (401, 403, 429) or exc.status >= 500:
                await self._release(claim.id)  # not an answer about this request's content
            else:
                async with self.db.session() as session:
                    await service.complete(
                        session,
                        claim_id=claim.id,
                        status=exc.status,
                        body=bytes(problem.body),
                        headers={**exc.headers, "content-type": errors.PROBLEM_JSON},
                    )
            return problem
        except BaseException:
            await self._release(claim.id)
            raise
        return Response(content, status_code, response_headers, media_type=JSON)

    async def _release(self, claim_id: Any) -> None:
        async def release() -> None:
            async with self.db.session() as session:
                await service.release(session, claim_id=claim_id)

        await asyncio.shield(release())


async def idempotent(
    request: Request,
    db: Annotated[Database, Depends(get_database)],
    settings: Annotated[Settings, Depends(get_settings)],
    principal: Annotated[Principal | None, Depends(get_principal)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Idempotent:
    key = service.validate_key(idempotency_key) if idempotency_key is not None else None
    owner = f"user:{principal.user_id}" if principal else "anonymous"
    return Idempotent(db, request, key, owner, timedelta(hours=settings.idempotency_ttl_hours))


IdempotentDep = Annotated[Idempotent, Depends(idempotent)]


# A unit of work that commits when the route function returns, *before* the response is sent,
# so a failed commit can never follow a success answer (the default request scope commits after).
WriteSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
