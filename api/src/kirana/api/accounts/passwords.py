"""Password hashing (argon2id, argon2-cffi's RFC 9106 defaults) and the password policy.

Used by the accounts service. `verify_dummy` burns the same time as a real verification so a
login for an unknown account is indistinguishable by timing.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kirana.api.errors import InvalidInput

MIN_LENGTH = 10
MAX_LENGTH = 256

_hasher = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4
_dummy_hash = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_dummy(password: str) -> None:
    verify(_dummy_hash, password)


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def problems(password: str, *, identifiers: tuple[str | None, ...] = ()) -> list[str]:
    """Why `password` is unacceptable (empty list: acceptable). Pure."""
    out = []
    if len(password) < MIN_LENGTH:
        out.append(f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        out.append(f"must be at most {MAX_LENGTH} characters")
    lowered = password.lower()
    for ident in identifiers:
        if ident and (lowered == ident.lower() or lowered in ident.lower()):
            out.append("must not be your email address or phone number")
            break
    if len(set(password)) < 4:
        out.append("must not repeat so few characters")
    return out


def check_policy(password: str, *, identifiers: tuple[str | None, ...] = ()) -> None:
    found = problems(password, identifiers=identifiers)
    if found:
        raise InvalidInput("the password " + "; ".join(found), extra={"field": "password"})
