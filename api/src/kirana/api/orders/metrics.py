"""Prometheus metrics of how placed orders end: paid, or closed unpaid (documented in
docs/commerce.md). Observed by the order state machine (`orders.service`) in whichever process
moves the order: the API (payment verification, cancellation) or a worker (webhooks, expiry).

The placed-to-paid ratio an alert watches is
`rate(kirana_order_placed_to_paid_seconds_count[1h])` over that plus
`rate(kirana_orders_closed_unpaid_total[1h])` (the recording rule
`kirana:orders_placed_to_paid:ratio1h`).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PLACED_TO_PAID = Histogram(
    "kirana_order_placed_to_paid_seconds",
    "Time from placing an order to its payment, observed once per order when it is paid.",
    buckets=(10, 30, 60, 120, 300, 600, 900, 1800, 3600, 4 * 3600, 24 * 3600),
)
CLOSED_UNPAID = Counter(
    "kirana_orders_closed_unpaid_total",
    "Orders closed before they were ever paid, by how (expired: the reservation ran out; cancelled).",
    ["how"],
)
UNPAID_CAP_REFUSALS = Counter(
    "kirana_orders_unpaid_cap_refusals_total",
    "Orders refused because their customer already held the most unpaid orders or units allowed.",
)
for _how in ("expired", "cancelled"):
    CLOSED_UNPAID.labels(_how)  # exported at 0 from the start, so rate() sees the first one
