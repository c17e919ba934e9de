"""Audit entries of the money paths, written at the end of their transaction.

The audit chain is one PostgreSQL advisory lock, held from a transaction's first entry to its
commit. Taken early in a payment's transaction, it was held across the rest of it (the order
transition, the ledger, an automatic refund's Razorpay call): under load every other audited
write queued behind it, and the storm test's verify calls timed out waiting for the lock. So
`service`, `refunds` and `flows` queue their entries (`audit_later`) and write them last
(`write_audits`), right before the commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kirana.api.audit import service as audit

_QUEUE = "payments.audit_later"


def audit_later(session: AsyncSession, ctx: audit.AuditContext, **entry: Any) -> None:
    """Queue an audit entry (the keyword arguments of `audit.record`) for `write_audits`."""
    session.info.setdefault(_QUEUE, []).append((ctx, entry))


async def write_audits(session: AsyncSession) -> None:
    """Write the queued entries, in order; call it last in the transaction."""
    for ctx, entry in session.info.pop(_QUEUE, []):
        await audit.record(session, ctx, **entry)


def discard_audits(session: AsyncSession) -> None:
    """Drop queued entries of work that is being rolled back."""
    session.info.pop(_QUEUE, None)
