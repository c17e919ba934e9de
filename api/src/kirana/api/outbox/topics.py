"""Every outbox topic this build writes, in one place: what a worker of this build may relay and
acknowledge.

A rolling deploy runs old and new workers side by side, and the new API writes topics the old
workers have never heard of. The relay therefore claims only the topics listed here, and the
event consumers acknowledge only those: an event of a newer topic waits in the outbox (or stays
pending in the stream) until a worker that knows it takes it, so an old replica can never mark
it done unread. `kirana_outbox_oldest_unpublished_age_seconds` (and the KiranaOutboxStalled
alert) shows an event that no running worker knows, such as one left behind by a rollback.
An event a newer relay has already put in the stream waits there only as long as the stream
keeps it (`relay.STREAM_MAXLEN` entries): one trimmed away is counted
(`kirana_worker_events_trimmed_total`) and logged, not silently gone.

A topic is never removed from this set while events of it may still wait somewhere; the domain
that writes a topic keeps its own constant for it (`tests/unit/outbox/test_topics.py` checks that
each one is here). `service.emit` refuses a topic missing from this set.
"""

from __future__ import annotations

TOPICS: frozenset[str] = frozenset(
    {
        "account.password_reset_requested",  # accounts.resets: the reset link is sent
        "account.signup_requested",  # accounts.signups: the sign-up codes are sent
        "order.placed",  # orders.sql (checkout, written in SQL): staff and customer sockets
        "order.status_changed",  # orders.service: sockets, loyalty awards
        "order.eta",  # delivery.service: sockets
        "delivery.status_changed",  # delivery.service: sockets
        "delivery.position",  # delivery.service: the delivery's socket channel
        "payment.succeeded",  # payments.service, payments.cod: sockets
        "payment.failed",  # payments.service: sockets
        "payment.auto_refunded",  # payments.service: the customer is told, sockets
        "payment.refund_updated",  # payments.refunds: sockets, loyalty points given back
        "loyalty.achievement_unlocked",  # loyalty.unlocking: sockets
    }
)
