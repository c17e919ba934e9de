"""Every problem `type` the API can answer with, and what a client should do about each.

The types are the `code`s of `kirana.api.errors.KiranaError` and its subclasses (domain errors
and the HTTP layer's own: 413, 415, 405, 500), found by walking the class tree once every
router is imported. `ADVICE` says what a client does for each; `docs/errors.md` is rendered from
both (`make docs-errors`), and a unit test fails when a new error class has no advice or the
page is stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kirana.api import errors, problems

ADVICE: dict[str, str] = {
    "bad-request": "Fix the request (a malformed header such as Content-Length); do not retry as is.",
    "campaign-window-invalid": "A campaign must end after it starts: fix `starts_at` / `ends_at`.",
    "cod-amount-mismatch": "Record the cash actually collected; it must equal the order total.",
    "cod-limit-exceeded": "Above the cash-on-delivery limit: pay online instead.",
    "cod-unavailable": "Cash on delivery is not offered for this order or store: pay online.",
    "conflict": "The resource's current state forbids this (e.g. a duplicate name); read it, then decide.",
    "forbidden": "The signed-in account lacks the permission named in `x-permission` (or must "
    "enable two-factor authentication: `reason: two-factor-required`). Do not retry.",
    "idempotency-key-in-use": "A request with this key is still running: wait `Retry-After` "
    "seconds and retry with the same key and body.",
    "idempotency-key-malformed": "Send 8-255 characters of letters, digits, `-`, `_`, `:` or `.`; "
    "a fresh UUID v4 is ideal.",
    "idempotency-key-required": "Send an `Idempotency-Key` (a fresh UUID per attempt to buy, "
    "reused on its retries).",
    "idempotency-key-reused": "This key was used for a different request: use a new key for a "
    "new request; reuse a key only to retry the very same one.",
    "internal-error": "A bug on our side: retry later; quote `request_id` (also `X-Request-ID`) "
    "when reporting it.",
    "invalid-input": "A value is acceptable in shape but not in meaning (see `detail`): fix it.",
    "invalid-state": "The resource is not in a state that allows this (e.g. an order already "
    "shipped): reload it and show the user its current state.",
    "method-not-allowed": "Use one of the methods in the `Allow` header.",
    "not-found": "No such resource (or it is not visible to this caller): check the id or path.",
    "not-sellable": "The product is unpublished or its variant inactive: remove the line.",
    "out-of-stock": "Not enough stock: lower the quantity or remove the line (the cart shows "
    "availability per line).",
    "payload-too-large": "Send a smaller body (the limit is in `detail`).",
    "payment-declined": "The gateway declined the payment: ask the shopper for another method.",
    "payment-expired": "The payment window closed: start a new payment for the order.",
    "payment-signature-invalid": "The gateway's signature does not match: do not mark the order "
    "paid; start again from the gateway's checkout.",
    "points-insufficient": "The balance is below the points asked for: redeem fewer (the balance "
    "is in `GET /v1/loyalty/me`).",
    "price-changed": "Prices moved since the cart was shown: reload the cart, show the new total, "
    "and send the new `expected_total_paise`.",
    "rate-limited": "Too many attempts: wait `Retry-After` seconds before trying again.",
    "redemption-closed": "The order can no longer take points (paid, cancelled or not yours): "
    "redeem on an unpaid order.",
    "redemption-exceeds-limit": "Redeem at most the share of the order total that points may pay.",
    "refund-refused": "Razorpay refused the refund (see `detail`): nothing moved; contact support "
    "or refund by another route.",
    "refund-exceeds-captured": "Refund at most what was captured minus what was refunded.",
    "sync-cursor-expired": "The change log no longer reaches back to your cursor: pull again "
    "without a cursor (a full resync).",
    "unauthorized": "Sign in (or refresh the access token) and send `Authorization: Bearer`; "
    "with `reason: step-up-required`, verify a two-factor code at `/v1/auth/step-up` and retry.",
    "too-many-unpaid-orders": "Pay or cancel the unpaid orders first (the limit is in `detail`).",
    "unavailable": "A dependency (payment gateway, SMS) is down: retry after `Retry-After` "
    "seconds when given, else with backoff.",
    "unknown-sku": "The SKU does not exist: remove it from the request.",
    "unknown-store": "No such store code: use one from the store list.",
    "unsupported-media-type": "Send bodies as `application/json`.",
    "upi-collect-unavailable": "Pay with the UPI app (intent) or the QR code instead.",
    "upi-limit-exceeded": "Above the UPI transaction limit: pay by another method.",
    "upi-vpa-invalid": "The UPI id is not valid: ask the shopper to check it.",
    "validation-error": "Fix the fields listed in `errors` (each names its location).",
    "webhook-malformed": "(Razorpay) the webhook body is not a known event; it is not retried.",
    "webhook-signature-invalid": "(Razorpay) the webhook signature is wrong: check the webhook secret.",
}


@dataclass(frozen=True)
class ProblemType:
    code: str
    title: str
    statuses: tuple[int, ...]

    @property
    def uri(self) -> str:
        return problems.TYPE_BASE + self.code


def _subclasses(cls: type[errors.KiranaError]) -> Iterator[type[errors.KiranaError]]:
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("kirana."):
            yield sub
            yield from _subclasses(sub)


def problem_types() -> list[ProblemType]:
    """Every problem type of the error classes imported so far (import the app first)."""
    found: dict[str, tuple[str, set[int]]] = {}
    classes: list[type[errors.KiranaError]] = [errors.KiranaError, *_subclasses(errors.KiranaError)]
    for cls in classes:
        title, statuses = found.setdefault(cls.code, (cls.title, set()))
        statuses.add(cls.status)
    return [ProblemType(code, t, tuple(sorted(s))) for code, (t, s) in sorted(found.items())]


def render_markdown(types: list[ProblemType]) -> str:
    """docs/errors.md."""
    lines = [
        "# Error answers",
        "",
        "Every error answer is `application/problem+json` (RFC 9457): `type`, `title`, `status`,",
        "`detail`, `instance`, plus `errors[]` on validation failures and a `request_id` on 500.",
        "Branch on `type`, never on `title` or `detail`. Each operation in `/openapi.json` lists the",
        "types it can answer with (`x-problem-types` on each error response).",
        "",
        "Generated from the error classes by `make docs-errors`; a unit test keeps it current.",
        "",
        "| type | status | title | what to do |",
        "| --- | --- | --- | --- |",
    ]
    for t in types:
        statuses = ", ".join(str(s) for s in t.statuses)
        lines.append(f"| `{t.uri}` | {statuses} | {t.title} | {ADVICE.get(t.code, '')} |")
    return "\n".join(lines) + "\n"
