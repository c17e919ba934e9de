"""What a database refusal of a request's data means in the shop's error vocabulary.

Called by the problem+json handlers (`kirana.api.problems`), order group commit
(`orders.batch`) and sync push (`sync.service`). Input is checked at validation
(`kirana.api.inputs`), so this is the net under it: a value PostgreSQL still refuses as data
(SQLSTATE class 22: out of range, malformed text, bad encoding, ...) is the request's fault and
answers 422, never 500, and never fails work that other requests share. Errors raised through
SQLAlchemy and raw asyncpg errors (`db.raw`) are both understood.
"""

from __future__ import annotations

from kirana.api.errors import InvalidInput

DATA_EXCEPTION = "22"
INTEGRITY_VIOLATION = "23"


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (SQLAlchemy's, or asyncpg's own), else None."""
    for candidate in (exc, getattr(exc, "orig", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str) and len(state) == 5:
            return state
    return None


def refuses_the_data(exc: BaseException) -> bool:
    """Whether the database refused the values one request sent (class 22 or 23), rather
    than failing for reasons of its own (connection, deadlock, resources)."""
    state = sqlstate(exc)
    return state is not None and state[:2] in (DATA_EXCEPTION, INTEGRITY_VIOLATION)


def as_invalid_input(exc: BaseException) -> InvalidInput | None:
    """The 422 a data exception (class 22) stands for; None for any other error."""
    state = sqlstate(exc)
    if state is None or not state.startswith(DATA_EXCEPTION):
        return None
    return InvalidInput(
        "a value in the request cannot be stored (out of range or malformed)",
        extra={"sqlstate": state},
    )
