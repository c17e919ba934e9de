"""The three callers the schemathesis run fuzzes the API as, and the run's configuration.

`test_fuzz.py` signs the callers in on a real server (a customer; a store manager scoped to one
store; the owner with an authenticator app enrolled), then loads `/openapi.json` with `config()`:
every check schemathesis has, all generation modes (valid and invalid data), a fixed seed and
bounded example counts. Every check or operation left out is left out here, with its reason.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyotp
import schemathesis
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from kirana.api.access.models import UserRole, UserScope
from kirana.api.accounts import passwords
from kirana.api.accounts.models import User
from kirana.api.db.base import utcnow
from kirana.api.db.urls import sync_url
from kirana.api.idempotency.service import KEY_PATTERN as IDEMPOTENCY_KEY

# Not the password of the document's examples (`correct-horse-battery`): the examples phase sends
# `POST /v1/auth/password` and `/v1/auth/2fa/disable` with that one, and would change the
# caller's password or turn its two-factor off half-way through the run.
PASSWORD = "fuzz-caller-staple-42"
SEED = 20261202
STAFF_STORE = "blr-1"

# Operations that end the session that sends them. Each case of these is sent with a session of
# its own (a fresh sign-in of a throwaway customer), so the caller's session outlives the run.
SESSION_ENDING = frozenset(
    {
        ("POST", "/v1/auth/logout"),
        ("POST", "/v1/auth/sessions/revoke-all"),
        ("DELETE", "/v1/auth/sessions/{session_id}"),
    }
)

_ips = itertools.count(1)


def _client_ip() -> str:
    """A distinct client address per sign-in (the server trusts X-Forwarded-For from 127.0.0.1):
    the fuzzer's own sign-in attempts use up 127.0.0.1's per-address login limit."""
    n = next(_ips)
    return f"10.77.{n // 250}.{n % 250 + 1}"


@dataclass
class Caller:
    name: str
    email: str
    token: str = ""
    totp_secret: str | None = None
    roles: tuple[str, ...] = ()
    cases: dict[str, int] = field(default_factory=dict)  # operation label -> cases sent
    phases: dict[str, int] = field(default_factory=dict)  # phase (examples, coverage, ...) -> cases
    waited: dict[str, float] = field(default_factory=dict)  # operation label -> seconds of answers
    steps: int = 0  # stateful steps sent
    failed: list[str] = field(default_factory=list)  # stateful checks that failed, as they ran

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_user(database_url: str, *, roles: tuple[str, ...], scopes: tuple[str, ...] = ()) -> str:
    engine = create_engine(sync_url(database_url))
    email = f"fuzz-{uuid.uuid4().hex[:10]}@example.com"
    with Session(engine) as session, session.begin():
        user = User(
            email=email,
            password_hash=passwords.hash_password(PASSWORD),
            name="Fuzz",
            password_changed_at=utcnow(),
        )
        session.add(user)
        session.flush()
        for role in roles:
            session.add(UserRole(user_id=user.id, role=role, granted_at=utcnow()))
        for scope in scopes:
            session.add(UserScope(user_id=user.id, scope=scope))
    engine.dispose()
    return email


def sign_in(client: httpx.Client, email: str) -> str:
    """A password sign-in (no second factor): the access token."""
    r = client.post(
        "/v1/auth/login",
        json={"identifier": email, "password": PASSWORD},
        headers={"X-Forwarded-For": _client_ip()},
    )
    assert r.status_code == 200, r.text
    assert not r.json().get("two_factor_required"), r.text
    return str(r.json()["access_token"])


def enrol_totp(client: httpx.Client, caller: Caller) -> None:
    """Step up with the password (the account has no second factor yet), enrol an authenticator
    app and confirm it: the step-up stays fresh for `KIRANA_STEP_UP_TTL_S`."""
    auth = caller.headers
    r = client.post("/v1/auth/step-up", headers=auth, json={"method": "password", "password": PASSWORD})
    assert r.status_code == 200, r.text
    r = client.post("/v1/auth/2fa/totp", headers=auth)
    assert r.status_code == 200, r.text
    caller.totp_secret = r.json()["secret"]
    code = pyotp.TOTP(caller.totp_secret).at(time.time())
    r = client.post("/v1/auth/2fa/totp/confirm", headers=auth, json={"code": code})
    assert r.status_code == 200, r.text
    r = client.get("/v1/auth/me", headers=auth)
    assert r.status_code == 200 and r.json()["two_factor_enabled"] is True, r.text


def fresh_idempotency_key(case: schemathesis.Case[Any]) -> None:
    """A well-formed Idempotency-Key becomes a fresh UUID: the generator sends the same few keys
    for different requests, which the server rightly refuses (422 idempotency-key-reused), as
    a client must never reuse a key for another request. Malformed keys are sent as generated."""
    key = case.headers.get("Idempotency-Key")
    if isinstance(key, str) and IDEMPOTENCY_KEY.fullmatch(key) and 8 <= len(key) <= 255:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())


# The largest request line uvicorn's parser (httptools) takes; longer ones get its plain-text
# "400 Invalid HTTP request received." before any application code runs.
REQUEST_LINE_LIMIT = 64 * 1024


def refused_by_http_parser(case: schemathesis.Case[Any], response: schemathesis.Response) -> bool:
    """A case the HTTP server refused as unparseable (a path or query of many KiB, which a path
    parameter of unbounded length can be): the document describes the application, not uvicorn."""
    url = response.request.url or ""
    return (
        response.status_code == 400
        and response.headers.get("content-type", [""])[0].startswith("text/plain")
        and response.text == "Invalid HTTP request received."
        and len(url) > REQUEST_LINE_LIMIT // 2
    )


def _breaks_text(value: Any) -> bool:
    if isinstance(value, str):
        return any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_breaks_text(k) or _breaks_text(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_breaks_text(v) for v in value)
    return False


def mislabelled_positive(case: schemathesis.Case[Any]) -> bool:
    """A case schemathesis calls schema-valid whose strings break the document's own text rule
    (`inputs.TEXT_PATTERN`: no NUL, no lone surrogate). Its stateful phase has sent such bodies
    (a NUL in a category's `name` and in a campaign's fields, each under that `pattern`): they are
    not positive data, so the server's 422 for them is no contract failure."""
    meta = case.meta
    positive = meta is not None and meta.generation.mode.is_positive
    return positive and any(_breaks_text(v) for v in (case.body, case.query, case.path_parameters))


class CallerAuth:
    """schemathesis auth: the caller's bearer token, or for `SESSION_ENDING` operations a fresh
    session of a throwaway customer (signed in per case)."""

    def __init__(self, caller: Caller, base: str, throwaway_email: str) -> None:
        self.caller = caller
        self.client = httpx.Client(base_url=base, timeout=30)
        self.throwaway_email = throwaway_email

    def get(self, case: schemathesis.Case[Any], ctx: schemathesis.AuthContext) -> str:
        if (case.operation.method.upper(), case.operation.path) in SESSION_ENDING:
            return sign_in(self.client, self.throwaway_email)
        return self.caller.token

    def set(self, case: schemathesis.Case[Any], data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


def _expect(method: str, path: str, check: str, *statuses: str) -> dict[str, Any]:
    """One operation where `check` also takes `statuses` (beside its defaults)."""
    defaults = {
        "positive_data_acceptance": ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"],
        "missing_required_header": ["400", "401", "403", "406", "415", "422"],
    }[check]
    expected = {"expected-statuses": [*defaults, *statuses]}
    return {"include-name": f"{method} {path}", "checks": {check: expected}}


def _off(method: str, path: str, check: str) -> dict[str, Any]:
    return {"include-name": f"{method} {path}", "checks": {check: {"enabled": False}}}


# Per operation: what a check cannot see from the document, each with its reason.
OPERATIONS: list[dict[str, Any]] = [
    # 428 Precondition Required (RFC 6585) is the answer to a missing Idempotency-Key; the check
    # knows only 400/422 for a missing header.
    _expect("POST", "/v1/checkout", "missing_required_header", "428"),
    _expect("POST", "/v1/orders", "missing_required_header", "428"),
    _expect("POST", "/v1/orders/{order_id}/payments/refunds", "missing_required_header", "428"),
    # Valid in shape, refused in meaning (422 invalid-input / unknown-sku): the value must be a
    # secret only the server or the payer has (a code, a signature), a cursor the server issued,
    # or a SKU that exists. No schema can state which values those are.
    _expect("POST", "/v1/auth/me/verify", "positive_data_acceptance", "422"),  # the code sent
    _expect("POST", "/v1/auth/register/verify", "positive_data_acceptance", "422"),  # token + code
    _expect("POST", "/v1/auth/2fa/totp/confirm", "positive_data_acceptance", "422"),  # TOTP code
    _expect("POST", "/v1/auth/2fa/sms/confirm", "positive_data_acceptance", "422"),  # SMS code
    _expect("POST", "/v1/auth/step-up", "positive_data_acceptance", "422"),  # code of the method
    _expect("POST", "/v1/auth/login/2fa", "positive_data_acceptance", "422"),  # challenge + code
    _expect("POST", "/v1/auth/password/reset", "positive_data_acceptance", "422"),  # reset code
    # (400 payment-signature-invalid / webhook-signature-invalid: the gateway's HMAC)
    _expect("POST", "/v1/payments/verify", "positive_data_acceptance", "400", "422"),
    _expect("POST", "/v1/webhooks/razorpay", "positive_data_acceptance", "400", "422"),
    _expect("GET", "/v1/catalog/products", "positive_data_acceptance", "422"),  # cursor
    _expect("GET", "/v1/orders", "positive_data_acceptance", "422"),  # cursor
    _expect("GET", "/v1/staff/orders", "positive_data_acceptance", "422"),  # cursor
    _expect("GET", "/v1/sync/pull", "positive_data_acceptance", "422"),  # cursor
    _expect("GET", "/v1/loyalty/me/ledger", "positive_data_acceptance", "422"),  # cursor
    _expect("GET", "/v1/loyalty/customers/{user_id}/ledger", "positive_data_acceptance", "422"),
    _expect("GET", "/v1/audit/events", "positive_data_acceptance", "422"),  # cursor
    _expect("POST", "/v1/cart/lines", "positive_data_acceptance", "422"),  # SKU must exist
    _expect("PUT", "/v1/cart/lines/{sku}", "positive_data_acceptance", "422"),  # SKU must exist
    # Password strength (no short repeated patterns, not the e-mail, ...) is judged by a
    # strength estimator, not a pattern; the document says so in words.
    _expect("POST", "/v1/auth/register", "positive_data_acceptance", "422"),
    # An Indian mobile number in any usual spelling (spaces, dashes, +91 / 0091 / 0 prefixes) is
    # judged by a normaliser; the document gives the rule and an example in words.
    _expect("PATCH", "/v1/auth/me", "positive_data_acceptance", "422"),
    _expect("POST", "/v1/auth/password", "positive_data_acceptance", "422"),
    # `q` needs a letter or digit unless a category or brand is chosen: a rule across two
    # parameters, which JSON Schema cannot say of query parameters.
    _expect("GET", "/v1/search", "positive_data_acceptance", "422"),
    _expect("POST", "/v1/loyalty/customers/{user_id}/adjustments", "missing_required_header", "428"),
    # Rules across fields or against stored data, which the document states in words (field
    # descriptions) and the server answers with 422: a selling price at most the MRP (also the
    # stored MRP of a variant), a non-zero stock delta or points adjustment, a grant's expiry in
    # the future, distinct synonym terms, a guest cart token the server issued, SKUs that exist.
    # (Role names, permissions and scopes have their patterns in the document.)
    _expect("POST", "/v1/catalog/products", "positive_data_acceptance", "422"),
    # a campaign's window: `ends_at` after `starts_at` (also the stored one, on PATCH)
    _expect("POST", "/v1/loyalty/campaigns", "positive_data_acceptance", "422"),
    _expect("PATCH", "/v1/loyalty/campaigns/{campaign_id}", "positive_data_acceptance", "422"),
    _expect("PATCH", "/v1/catalog/products/{ref}", "positive_data_acceptance", "422"),
    _expect("POST", "/v1/catalog/products/{ref}/variants", "positive_data_acceptance", "422"),
    _expect("PATCH", "/v1/catalog/variants/{sku}", "positive_data_acceptance", "422"),
    _expect("POST", "/v1/catalog/variants/{sku}/stock", "positive_data_acceptance", "422"),
    _expect("POST", "/v1/loyalty/customers/{user_id}/adjustments", "positive_data_acceptance", "422"),
    _expect("PUT", "/v1/access/roles/{name}", "positive_data_acceptance", "422"),
    _expect("POST", "/v1/access/users/{user_id}/roles", "positive_data_acceptance", "422"),
    _expect("POST", "/v1/access/users/{user_id}/permissions", "positive_data_acceptance", "422"),
    _expect("POST", "/v1/search/synonyms", "positive_data_acceptance", "422"),
    _expect("PUT", "/v1/search/synonyms/{synonym_id}", "positive_data_acceptance", "422"),
    _expect("POST", "/v1/cart/merge", "positive_data_acceptance", "422"),
    _expect("POST", "/v1/orders", "positive_data_acceptance", "422"),
    _expect("POST", "/v1/checkout", "positive_data_acceptance", "422"),
    _expect("POST", "/v1/sync/push", "positive_data_acceptance", "422"),
    # A batch: each mutation is judged on its own, and a malformed one is answered `rejected`
    # inside the 200 (with its validation errors), so one bad item never loses the others.
    _off("POST", "/v1/sync/push", "negative_data_rejection"),
]


def coverage_owner(permission: str, held: dict[str, set[str]]) -> str:
    """The caller the coverage phase runs an operation as: the least privileged one that passes
    its access rule (`x-permission`: public, authenticated, or the permissions it needs)."""
    needed = set() if permission in ("public", "authenticated") else set(permission.split())
    return next((name for name in ("customer", "staff") if needed <= held[name]), "owner")


def config(base: str, *, max_examples: int, max_steps: int, no_coverage: list[str]) -> schemathesis.Config:
    """The run's configuration for one caller. `no_coverage`: the operations (labels) whose
    coverage phase runs as another caller (`coverage_owner`). That phase's cases come from the
    schema alone (each boundary value and each way to break each parameter, the same for every
    caller: some 40 per operation), and an operation a caller may not use answers 403 before it
    validates anything; so each operation gets them once, as the caller that reaches its
    validation, and the examples, fuzzing and stateful phases run as every caller."""
    data: dict[str, Any] = {
        "seed": SEED,
        # too_slow: each case is a real HTTP request to a real server on a shared 2-core machine;
        # Hypothesis measures generation plus the request and calls that slow, which it is not.
        "suppress-health-check": ["too_slow"],
        "base-url": base,
        "request-timeout": 30,
        "generation": {
            "mode": "all",  # valid data (positive) and invalid data (negative)
            "max-examples": max_examples,
            "deterministic": True,  # Hypothesis' derandomize: the same cases every run
            "database": "none",  # no example database: a run never replays another run's cases
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": max_steps},
        },
        # Every check is on (schemathesis's default) but `max_response_time`, which runs only
        # with a time limit: the tests never assert wall-clock times (benchmarks measure speed).
        "checks": {"enabled": True},
    }
    data["operations"] = [*OPERATIONS]
    if no_coverage:
        data["operations"].append({"include-name": no_coverage, "phases": {"coverage": {"enabled": False}}})
    return schemathesis.Config.from_dict(data)
