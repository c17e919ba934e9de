"""Prometheus metrics of the WebSocket hub (all named `kirana_ws_*`; see docs/realtime.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SOCKETS = Gauge("kirana_ws_connections", "Open WebSocket connections.", multiprocess_mode="livesum")
ACCEPTED = Counter("kirana_ws_connections_accepted_total", "WebSocket connections accepted.")
REFUSED = Counter(
    "kirana_ws_connections_refused_total", "WebSocket connections refused, by reason.", ["reason"]
)
REFUSAL_REASONS = ("draining", "credentials", "per-user-cap", "other")  # see realtime.router
for _reason in REFUSAL_REASONS:  # exported at 0 from the start, so rates and alerts see them
    REFUSED.labels(_reason)
SENT = Counter("kirana_ws_frames_sent_total", "Frames sent to WebSocket clients.")
SLOW = Counter("kirana_ws_slow_consumers_total", "Sockets closed because their send queue was full.")
REVOKED = Counter("kirana_ws_revoked_total", "Sockets closed because their session was signed out.")
RESYNCS = Counter("kirana_ws_resyncs_total", "`resync` messages sent (the history did not reach back).")
RECOVERED = Counter("kirana_ws_recovered_messages_total", "Messages sent from the history to fill a gap.")
