"""The shop's staff under load: a store manager of this run moving paid orders on and refunding
some, with the two-factor step-up the API demands for refunds.

Credentials come from what `kirana run` seeds, never from tokens: the demo owner
(`kirana.api.accounts.seed.DEMO_ACCOUNTS`, or `KIRANA_LOAD_OWNER` / `KIRANA_LOAD_OWNER_PASSWORD`
and `KIRANA_LOAD_OWNER_PHONE` when the identifier is an email)
signs in once per Locust process. Granting is privileged, so the owner needs two-factor
authentication: when it has none, the desk enrols SMS two-factor on the owner's number (the code
is read from the local SMS gateway's inbox, `kirana.api.devsms`; it stays enrolled, and later
runs sign the owner in with an SMS code the same way). Each staff user then signs up a new
account of its own, the owner grants it `store_manager`, and it enrols SMS two-factor on its own
number, so its refunds pass `payments:refund` and the step-up (a fresh SMS code every 8 minutes).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:  # Locust (and gevent) only when the load runs: the pure parts are unit-tested
    from locust.clients import HttpSession

STEP_UP_EVERY_S = 480  # KIRANA_STEP_UP_TTL_S is 600 by default
ROLE = "store_manager"
NEXT = {"paid": "packed", "packed": "shipped", "shipped": "out_for_delivery", "out_for_delivery": "delivered"}


def furthest(orders: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The order furthest along that staff can still move on (None: nothing to do)."""
    order = list(NEXT)
    movable = [o for o in orders if o.get("status") in NEXT]
    return max(movable, key=lambda o: order.index(o["status"]), default=None)


def owner_known() -> bool:
    """Whether a desk can sign the owner in: credentials in the environment, or the demo owner's
    of a local `kirana run` (the `kirana` package importable; a load image has no shop code)."""
    if os.environ.get("KIRANA_LOAD_OWNER") and os.environ.get("KIRANA_LOAD_OWNER_PASSWORD"):
        return True
    try:
        import kirana.api.accounts.seed  # noqa: F401
    except ImportError:
        return False
    return True


def owner_credentials() -> tuple[str, str, str]:
    """(identifier, password, phone) of the owner. The phone is where a sign-in code goes once
    the owner has two-factor on (after the first run), so it is known before the first sign-in."""
    identifier = os.environ.get("KIRANA_LOAD_OWNER", "")
    password = os.environ.get("KIRANA_LOAD_OWNER_PASSWORD", "")
    if identifier and password:
        phone = os.environ.get("KIRANA_LOAD_OWNER_PHONE", "")
        return identifier, password, phone or (identifier if identifier.startswith("+") else "")
    from kirana.api.accounts.seed import DEMO_ACCOUNTS  # what `kirana run` seeds

    owner = next(a for a in DEMO_ACCOUNTS if "owner" in a[4])
    return owner[0], owner[2], owner[1]


def latest_code(sms_url: str, phone: str, after: float, within_s: float = 30.0) -> str:
    """The newest 2FA code texted to `phone` since `after` (epoch seconds)."""
    deadline = time.monotonic() + within_s
    with httpx.Client(timeout=5) as inbox:
        while time.monotonic() < deadline:
            found = inbox.get(f"{sms_url}/messages", params={"to": phone}).json()["messages"]
            for message in reversed(found):
                if message.get("at", 0) >= after - 1 and "verification code" in message["text"]:
                    return str(message["text"].split(" ", 1)[0])
            time.sleep(0.2)
    raise RuntimeError(f"no verification code reached {phone} within {within_s:.0f}s")


def _ok(r: object, what: str) -> None:
    status = getattr(r, "status_code", 0)
    if not 200 <= status < 300:
        raise RuntimeError(f"{what}: {status} {getattr(r, 'text', '')[:300]}")


@dataclass
class Session:
    """A signed-in staff session (owner or store manager) that keeps its step-up fresh."""

    http: HttpSession
    headers: dict[str, str]
    sms_url: str
    identifier: str
    password: str
    phone: str = ""
    token: str = ""
    signed_in_at: float = 0.0
    stepped_up_at: float = 0.0
    two_factor: bool = False

    def h(self) -> dict[str, str]:
        if time.monotonic() - self.signed_in_at > STEP_UP_EVERY_S:
            self.sign_in()
        return self.headers | {"Authorization": f"Bearer {self.token}"}

    def sign_in(self) -> None:
        r = self.http.post(
            "/v1/auth/login",
            json={"identifier": self.identifier, "password": self.password},
            headers=self.headers,
            name="staff: sign in",
        )
        _ok(r, "staff sign-in")
        body = r.json()
        if body.get("two_factor_required"):
            self.two_factor = True
            sent_at = time.time()
            r = self.http.post(
                "/v1/auth/login/2fa/sms",
                json={"challenge": body["challenge"]},
                headers=self.headers,
                name="staff: sign-in code",
            )
            _ok(r, "sending the sign-in code")
            code = latest_code(self.sms_url, self._phone(), sent_at)
            r = self.http.post(
                "/v1/auth/login/2fa",
                json={"challenge": body["challenge"], "method": "sms", "code": code},
                headers=self.headers,
                name="staff: sign in (2FA)",
            )
            _ok(r, "the 2FA sign-in")
            body = r.json()
            self.stepped_up_at = time.monotonic()  # a 2FA sign-in is a strong authentication
        self.token = body["access_token"]
        self.signed_in_at = time.monotonic()
        if not self.phone:
            me = self.http.get("/v1/auth/me", headers=self.h(), name="staff: me")
            _ok(me, "staff me")
            self.phone = str(me.json().get("phone") or "")

    def _phone(self) -> str:
        return self.phone or (self.identifier if self.identifier.startswith("+") else "")

    def enrol_sms(self) -> None:
        """Step up with the password, then turn SMS two-factor on (code from the inbox)."""
        r = self.http.post(
            "/v1/auth/step-up",
            json={"method": "password", "password": self.password},
            headers=self.h(),
            name="staff: step-up",
        )
        _ok(r, "password step-up")
        self.stepped_up_at = time.monotonic()
        sent_at = time.time()
        r = self.http.post("/v1/auth/2fa/sms", headers=self.h(), name="staff: enrol 2FA")
        _ok(r, "SMS 2FA enrolment")
        code = latest_code(self.sms_url, self._phone(), sent_at)
        r = self.http.post(
            "/v1/auth/2fa/sms/confirm", json={"code": code}, headers=self.h(), name="staff: confirm 2FA"
        )
        _ok(r, "confirming SMS 2FA")
        self.two_factor = True

    def step_up(self) -> None:
        """A fresh SMS step-up when the last one is about to lapse."""
        if time.monotonic() - self.stepped_up_at < STEP_UP_EVERY_S:
            return
        sent_at = time.time()
        r = self.http.post("/v1/auth/step-up/sms", headers=self.h(), name="staff: step-up code")
        _ok(r, "sending the step-up code")
        code = latest_code(self.sms_url, self._phone(), sent_at)
        r = self.http.post(
            "/v1/auth/step-up", json={"method": "sms", "code": code}, headers=self.h(), name="staff: step-up"
        )
        _ok(r, "SMS step-up")
        self.stepped_up_at = time.monotonic()


class Desk:
    """The owner's session in this Locust process, signed in (and given SMS 2FA) once, that
    grants each staff user its role."""

    def __init__(self) -> None:
        self.lock: Any = None
        self.owner: Session | None = None

    def grant(self, http: HttpSession, sms_url: str, rng_ip: str, user_id: str) -> None:
        if self.lock is None:
            import gevent.lock

            self.lock = gevent.lock.BoundedSemaphore()
        with self.lock:
            if self.owner is None:
                identifier, password, phone = owner_credentials()
                owner = Session(http, {"X-Forwarded-For": rng_ip}, sms_url, identifier, password, phone=phone)
                owner.sign_in()
                if not owner.two_factor:
                    owner.enrol_sms()
                self.owner = owner
            owner = self.owner
            owner.step_up()
            r = owner.http.post(
                f"/v1/access/users/{user_id}/roles",
                json={"role": ROLE},
                headers=owner.h(),
                name="staff: grant role",
            )
            _ok(r, "granting the staff role")


DESK = Desk()


def new_staff(http: HttpSession, headers: dict[str, str], sms_url: str) -> Session:
    """A store manager of this run: a new account, granted `store_manager` by the owner, with
    SMS two-factor on its own number."""
    from tests.load import journeys

    account = journeys.sign_up(http, headers, sms_url)
    DESK.grant(http, sms_url, headers["X-Forwarded-For"], account.user_id)
    staff = Session(http, headers, sms_url, account.identifier, account.password, phone=account.identifier)
    staff.sign_in()  # a new session: the new role's permissions with it
    staff.enrol_sms()
    return staff
