"""Create the first owner of a new shop (`kirana accounts create-owner`).

A fresh production database has the system roles but nobody to hold them, and every grant needs
a granter who already holds the permission. This is the one way in: it refuses once any owner
exists (after that, owners grant roles through the API, with step-up 2FA), and it is recorded in
the audit log like every other security-relevant change.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, text

from kirana.api.access.models import UserRole
from kirana.api.accounts import identifiers, passwords
from kirana.api.accounts.models import User
from kirana.api.audit import service as audit
from kirana.api.db.base import utcnow
from kirana.api.db.engine import Database
from kirana.api.errors import Conflict, InvalidInput

OWNER_ROLES = ("customer", "owner")
BOOTSTRAP_LOCK = 0x6B6F776E6572  # "kowner"


async def create_owner(
    db: Database, *, email: str, password: str, name: str = "", phone: str | None = None
) -> uuid.UUID:
    try:
        email_n = identifiers.normalize_email(email)
        phone_n = identifiers.normalize_phone(phone) if phone else None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    problems = passwords.problems(password, identifiers=(email_n, phone_n))
    if problems:
        raise InvalidInput("password " + "; ".join(problems))
    async with db.session() as session:
        # Two bootstraps at once must not both see "no owner yet".
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": BOOTSTRAP_LOCK})
        existing = await session.scalar(select(UserRole.user_id).where(UserRole.role == "owner").limit(1))
        if existing is not None:
            raise Conflict("the shop already has an owner; owners grant roles through the API")
        if await session.scalar(select(User.id).where(User.email == email_n)) is not None:
            raise Conflict(f"an account with {email_n} exists; grant it the owner role instead")
        now = utcnow()
        user = User(
            email=email_n,
            phone=phone_n,
            name=name,
            password_hash=passwords.hash_password(password),
            password_changed_at=now,
        )
        session.add(user)
        await session.flush()
        for role in OWNER_ROLES:
            session.add(UserRole(user_id=user.id, role=role, granted_at=now))
        await audit.record(
            session,
            audit.SYSTEM,
            action="access.owner_bootstrapped",
            target_type="user",
            target_id=user.id,
            after={"roles": list(OWNER_ROLES), "via": "kirana accounts create-owner"},
        )
        return user.id
