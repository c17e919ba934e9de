"""Demo accounts for `kirana run` (development only; credentials are in docs/access.md).

The system roles themselves come with the migrations, since production needs them too.
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from kirana.api.access.models import UserRole
from kirana.api.accounts import passwords
from kirana.api.accounts.models import User
from kirana.api.db.base import new_id, utcnow

DEMO_ACCOUNTS = (
    # email, phone, password, name, roles
    ("owner@kirana.test", "+919800000001", "kirana-owner-demo", "Demo Owner", ("customer", "owner")),
    ("asha@kirana.test", "+919800000002", "kirana-customer-demo", "Asha (demo customer)", ("customer",)),
)


def demo_accounts(conn: Connection) -> int:
    created = 0
    for email, phone, password, name, roles in DEMO_ACCOUNTS:
        if conn.scalar(select(User.id).where(User.email == email)) is not None:
            continue
        user_id = new_id()
        now = utcnow()
        conn.execute(
            insert(User).values(
                id=user_id,
                email=email,
                phone=phone,
                name=name,
                password_hash=passwords.hash_password(password),
                password_changed_at=now,
            )
        )
        for role in roles:
            conn.execute(insert(UserRole).values(id=new_id(), user_id=user_id, role=role, granted_at=now))
        created += 1 + len(roles)
    return created
