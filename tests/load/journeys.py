"""What the load's customers do, as plain functions over a Locust `HttpSession`, so the
locustfile stays a list of user classes with weights.

Every request carries a `name` (the journey step the thresholds and the report speak of) and
the customer's own `X-Forwarded-For` address from the benchmark range 198.18.0.0/15, so that
per-address limits (sign-up, sign-in) see many shoppers rather than one loopback client; the
shop believes it only from `KIRANA_FORWARDED_ALLOW_IPS` (loopback by default).
"""

from __future__ import annotations

import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from locust.clients import HttpSession

WORDS_FALLBACK = ("rice", "dal", "oil", "tea", "ghee", "atta", "soap", "salt")


def client_ip(rng: random.Random) -> str:
    """A distinct address for one simulated customer (RFC 2544 benchmarking range)."""
    n = rng.randrange(2, 2**17 - 2)
    return f"198.{18 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"


@dataclass
class Catalog:
    """What browsing has learned, shared by the users of one Locust process."""

    slugs: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)

    def learn(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            if item.get("in_stock") and item["slug"] not in self.slugs and len(self.slugs) < 2000:
                self.slugs.append(item["slug"])
            for word in str(item.get("title", "")).lower().split():
                if word.isalpha() and len(word) > 3 and word not in self.words and len(self.words) < 500:
                    self.words.append(word)

    def word(self, rng: random.Random) -> str:
        return rng.choice(self.words or list(WORDS_FALLBACK))


CATALOG = Catalog()
PAID: deque[str] = deque(maxlen=1000)  # Razorpay payment ids the shoppers paid, for the webhook users


@dataclass
class Browser:
    """An anonymous visitor: listing pages (following cursors), product pages revalidated with
    `If-None-Match`, search and suggestions as they type."""

    http: HttpSession
    rng: random.Random
    headers: dict[str, str]
    etags: dict[str, str] = field(default_factory=dict)
    cursor: str | None = None
    sort: str = "newest"

    def listing(self) -> None:
        """The next page of the current listing, or (three times in ten) a first page sorted anew."""
        if not self.cursor or self.rng.random() < 0.3:
            self.sort, self.cursor = self.rng.choice(["newest", "price_asc", "price_desc", "title"]), None
        params = {"sort": self.sort} | ({"cursor": self.cursor} if self.cursor else {})
        with self.http.get(
            "/v1/catalog/products",
            params=params,
            headers=self.headers,
            name="browse: listing",
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}")
                self.cursor = None
                return
            page = r.json()
            CATALOG.learn(page["items"])
            self.cursor = page.get("next_cursor")

    def product(self) -> dict[str, Any] | None:
        if not CATALOG.slugs:
            self.listing()
            if not CATALOG.slugs:
                return None
        slug = self.rng.choice(CATALOG.slugs)
        headers = dict(self.headers)
        if slug in self.etags:
            headers["If-None-Match"] = self.etags[slug]
        with self.http.get(
            f"/v1/catalog/products/{slug}", headers=headers, name="browse: product", catch_response=True
        ) as r:
            if r.status_code == 304:
                r.success()
                return None
            if r.status_code != 200:
                r.failure(f"{r.status_code}")
                return None
            if r.headers.get("ETag"):
                self.etags[slug] = r.headers["ETag"]
            data: dict[str, Any] = r.json()
            return data

    def search(self) -> None:
        q = CATALOG.word(self.rng)
        self.http.get("/v1/search", params={"q": q}, headers=self.headers, name="browse: search")

    def suggest(self) -> None:
        word = CATALOG.word(self.rng)
        for n in range(2, min(len(word), 5) + 1):  # as the shopper types
            self.http.get(
                "/v1/search/suggest", params={"q": word[:n]}, headers=self.headers, name="browse: suggest"
            )


@dataclass
class Account:
    identifier: str  # the mobile number it signs in with
    password: str
    user_id: str = ""
    token: str = ""
    signed_in_at: float = 0.0


def sign_up(http: HttpSession, headers: dict[str, str], sms_url: str) -> Account:
    """A new customer of this run: signed up with a mobile number, confirmed with the code read
    from the SMS inbox of the local gateway (`kirana.api.devsms`, as the customer reads their
    phone), then signed in (raises when a step fails)."""
    if not sms_url:
        raise RuntimeError("sign-up needs the SMS gateway's inbox (KIRANA_LOAD_SMS_URL)")
    phone = f"+919{uuid.uuid4().int % 10**9:09d}"
    account = Account(identifier=phone, password=f"Lt-{uuid.uuid4().hex}")
    r = http.post(
        "/v1/auth/register",
        json={"phone": phone, "password": account.password, "name": "Load Shopper"},
        headers=headers,
        name="shopper: sign up",
    )
    r.raise_for_status()
    code = _code_sent_to(sms_url, phone)
    r = http.post(
        "/v1/auth/register/verify",
        json={"signup": r.json()["signup"], "code": code},
        headers=headers,
        name="shopper: confirm sign-up",
    )
    r.raise_for_status()
    sign_in(http, headers, account)
    return account


def _code_sent_to(sms_url: str, phone: str, within_s: float = 30.0) -> str:
    """The sign-up code texted to `phone` (a worker sends it a moment after the sign-up)."""
    deadline = time.monotonic() + within_s
    with httpx.Client(timeout=5) as inbox:
        while time.monotonic() < deadline:
            found = inbox.get(f"{sms_url}/messages", params={"to": phone}).json()["messages"]
            for message in found:
                if "sign-up code: " in message["text"]:
                    return str(message["text"].split("sign-up code: ", 1)[1][:6])
            time.sleep(0.2)
    raise RuntimeError(f"no sign-up code reached {phone} within {within_s:.0f}s")


def sign_in(http: HttpSession, headers: dict[str, str], account: Account) -> None:
    r = http.post(
        "/v1/auth/login",
        json={"identifier": account.identifier, "password": account.password},
        headers=headers,
        name="shopper: sign in",
    )
    r.raise_for_status()
    account.token = r.json()["access_token"]
    account.signed_in_at = time.monotonic()
    if not account.user_id:
        me = http.get("/v1/auth/me", headers=headers | auth(account), name="shopper: me")
        me.raise_for_status()
        account.user_id = me.json()["id"]


def auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


def in_stock_sku(product: dict[str, Any]) -> tuple[str, int] | None:
    """An active variant with stock: (sku, unit price)."""
    for v in product.get("variants", []):
        if v.get("is_active") and v.get("in_stock") and v.get("stock", 0) > 2:
            return str(v["sku"]), int(v["price_paise"])
    return None


@dataclass
class MobileApp:
    """The offline-first app: a full download, then pulls of what changed, and batches of cart
    mutations recorded offline pushed together (sometimes sent twice, as after a timeout)."""

    http: HttpSession
    rng: random.Random
    headers: dict[str, str]
    cursor: str = "0"
    skus: list[str] = field(default_factory=list)
    last_batch: list[dict[str, Any]] = field(default_factory=list)

    def pull(self, *, full: bool = False) -> None:
        for _ in range(20 if full else 1):
            with self.http.get(
                "/v1/sync/pull",
                params={"cursor": self.cursor, "limit": 500},
                headers=self.headers,
                name="sync: pull (full)" if full else "sync: pull",
                catch_response=True,
            ) as r:
                if r.status_code == 410:  # compacted away: start again, as the app must
                    r.success()
                    self.cursor = "0"
                    return
                if r.status_code != 200:
                    r.failure(f"{r.status_code}")
                    return
                page = r.json()
            self.cursor = page["cursor"]
            for change in page["changes"]:
                if change["entity"] == "product" and change["data"] and len(self.skus) < 500:
                    sku = in_stock_sku(change["data"])
                    if sku:
                        self.skus.append(sku[0])
            if not page["has_more"]:
                return

    def push(self) -> None:
        if not self.skus:
            return
        if self.last_batch and self.rng.random() < 0.2:
            batch = self.last_batch  # the app resends: every answer must come back replayed
        else:
            sku = self.rng.choice(self.skus)
            batch = [
                {"client_mutation_id": str(uuid.uuid4()), "type": "cart.add", "sku": sku, "quantity": 2},
                {
                    "client_mutation_id": str(uuid.uuid4()),
                    "type": "cart.set_quantity",
                    "sku": sku,
                    "quantity": 1,
                },
                {"client_mutation_id": str(uuid.uuid4()), "type": "cart.remove", "sku": sku},
            ]
        with self.http.post(
            "/v1/sync/push",
            json={"mutations": batch},
            headers=self.headers,
            name="sync: push",
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}")
                return
            bad = [
                x
                for x in r.json()["results"]
                if x["status"] != "applied" and x.get("reason") != "out-of-stock"
            ]
            if bad:
                r.failure(f"rejected: {bad[0].get('reason')}")
        self.last_batch = batch
