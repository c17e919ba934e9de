"""`AuditCtx`: who is asking and from where, for the audit entries a route's flow writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kirana.api.audit.service import AuditContext


async def audit_context(request: Request) -> AuditContext:
    return AuditContext(
        actor_id=None,
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request.scope.get("kirana.request_id"),
    )


AuditCtx = Annotated[AuditContext, Depends(audit_context)]
