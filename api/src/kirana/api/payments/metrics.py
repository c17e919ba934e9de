"""Prometheus metrics of payments and Razorpay webhooks (documented in docs/payments.md)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CAPTURED = Counter(
    "kirana_payment_captured_total", "Payments captured and entered in the ledger, by method.", ["method"]
)
CAPTURED_PAISE = Counter("kirana_payment_captured_paise_total", "Paise captured (ledger).")
MISMATCH = Counter(
    "kirana_payment_mismatch_total",
    "Payments whose amount or currency differ from their order: not captured, flagged for staff.",
)
AUTO_REFUNDS = Counter(
    "kirana_payment_auto_refunds_total",
    "Payments refunded by the shop itself, by reason (duplicate, unfulfillable).",
    ["reason"],
)
FAILED = Counter("kirana_payment_failed_total", "Payments Razorpay reported failed, by reason.", ["reason"])
GATEWAY_ERRORS = Counter(
    "kirana_payment_gateway_errors_total",
    "Razorpay calls that timed out, failed (5xx) or could not connect, by operation.",
    ["operation"],
)
VERIFY_SECONDS = Histogram(
    "kirana_payment_verify_duration_seconds",
    "Time to verify a Checkout payment (signature, fetch, capture, ledger).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WEBHOOKS_RECEIVED = Counter(
    "kirana_webhook_received_total",
    "Razorpay webhooks received, by outcome (accepted, duplicate, bad_signature, malformed).",
    ["outcome"],
)
WEBHOOKS_PROCESSED = Counter(
    "kirana_webhook_processed_total",
    "Razorpay webhook events applied by the worker, by event and outcome.",
    ["event", "outcome"],
)
WEBHOOK_UNKNOWN_ORDER = Counter(
    "kirana_webhook_unknown_order_total", "Webhook events naming a Razorpay order the shop does not know."
)
RECONCILED = Counter(
    "kirana_payment_reconciled_total",
    "Payments the reconciler applied that webhooks and verify had not.",
)
REFUNDS = Counter(
    "kirana_payment_refunds_total",
    "Refunds settled, by source (staff, auto, razorpay) and outcome (processed, failed).",
    ["source", "outcome"],
)
COD = Counter(
    "kirana_payment_cod_total",
    "Cash-on-delivery orders, by step (confirmed, refused, collected).",
    ["step"],
)
NOTICES = Counter(
    "kirana_payment_notices_total", "Messages sent to customers about their payments, by kind.", ["kind"]
)
