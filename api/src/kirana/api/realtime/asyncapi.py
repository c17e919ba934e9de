"""The AsyncAPI 3 document of `GET /v1/ws`, served at `/asyncapi.json` beside `/openapi.json`.

Built from the same names the hub uses (`channels.ROUTES`), so a new routed outbox topic shows
up here without a second list to keep in step.
"""

from __future__ import annotations

from typing import Any

from kirana.api.realtime import channels

_ENVELOPE = {
    "channel": {"type": "string"},
    "seq": {"type": "integer", "minimum": 1, "description": "per channel, from 1, no gaps"},
    "epoch": {"type": "string", "description": "changes when the channel's history was lost"},
    "time": {"type": "string", "format": "date-time"},
}


def _event(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": kind,
        "payload": {
            "type": "object",
            "required": ["type", "channel", "seq", "epoch", "time", "data"],
            "properties": {"type": {"const": kind}, **_ENVELOPE, "data": data},
        },
    }


_ORDER = {
    "type": "object",
    "description": "the outbox payload of the event (order_id, user_id, store_code, from, to, ...)",
    "properties": {
        "order_id": {"type": "string", "format": "uuid"},
        "user_id": {"type": "string", "format": "uuid"},
        "store_code": {"type": "string"},
        "from": {"type": "string"},
        "to": {"type": "string"},
    },
}
_DELIVERY = {
    "type": "object",
    "description": "a delivery's change (see docs/delivery.md)",
    "properties": {
        "order_id": {"type": "string", "format": "uuid"},
        "delivery_id": {"type": "string", "format": "uuid"},
        "agent_id": {"type": "string", "format": "uuid"},
        "status": {"enum": ["assigned", "en_route", "delivered", "failed", "cancelled"]},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lng": {"type": "number", "minimum": -180, "maximum": 180},
        "accuracy_m": {"type": ["number", "null"]},
        "at": {"type": "string", "format": "date-time"},
        "eta_at": {"type": ["string", "null"], "format": "date-time"},
        "eta_s": {"type": "integer", "minimum": 0},
    },
}


def _control(kind: str, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": kind,
        "payload": {"type": "object", "properties": {"type": {"const": kind}, **props}},
    }


def document(version: str) -> dict[str, Any]:
    kinds = sorted({r.type for r in channels.ROUTES.values()})
    events = {
        k.replace(".", "_"): _event(k, _DELIVERY if k.startswith("delivery.") or k == "order.eta" else _ORDER)
        for k in kinds
    }
    sub_state = {"channel": {"type": "string"}, "epoch": {"type": "string"}, "seq": {"type": "integer"}}
    server_frames = {
        "subscribed": _control("subscribed", {**sub_state, "recovered": {"type": "boolean"}}),
        "resync": _control("resync", sub_state),
        "unsubscribed": _control("unsubscribed", {"channel": {"type": "string"}}),
        "error": _control(
            "error",
            {
                "code": {"enum": ["forbidden", "bad-frame"]},
                "channel": {"type": "string"},
                "detail": {"type": "string"},
            },
        ),
        "pong": _control("pong", {}),
    }
    client_frames = {
        "subscribe": {
            "name": "subscribe",
            "payload": {
                "type": "object",
                "required": ["op", "channel"],
                "properties": {
                    "op": {"const": "subscribe"},
                    "channel": {"type": "string"},
                    "since": {
                        "type": "object",
                        "required": ["epoch", "seq"],
                        "properties": {"epoch": {"type": "string"}, "seq": {"type": "integer"}},
                    },
                },
            },
        },
        "unsubscribe": _control(
            "unsubscribe", {"op": {"const": "unsubscribe"}, "channel": {"type": "string"}}
        ),
        "ping": _control("ping", {"op": {"const": "ping"}}),
    }
    ref = "#/channels/socket/messages/"
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Kirana real time",
            "version": version,
            "description": (
                "One socket at /v1/ws carries many channels: `user:<user id>:orders` (your own "
                "orders: status, payment results, delivery status, ETA), `store:<code>:orders` "
                "(staff with orders:read_all in that store's scope) and `delivery:<order id>` "
                "(the order's customer, its delivery agent, staff with deliveries:read_all in "
                "its store's scope: live position, delivery status, ETA). Connect with `?ticket=` from POST "
                "/v1/ws/ticket, or offer subprotocols `kirana.v1, bearer.<access token>`. Close "
                "codes: 1008 bad credentials, origin or revoked session; 1009 frame too large; "
                "1012 server restarting (reconnect, resume with `since`); 1013 slow consumer or "
                "too many sockets."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {"api": {"host": "localhost:8000", "pathname": "/v1/ws", "protocol": "ws"}},
        "channels": {
            "socket": {
                "address": "/v1/ws",
                "messages": {**events, **server_frames, **client_frames},
            }
        },
        "operations": {
            "receive": {
                "action": "receive",
                "channel": {"$ref": "#/channels/socket"},
                "messages": [{"$ref": ref + name} for name in (*events, *server_frames)],
            },
            "send": {
                "action": "send",
                "channel": {"$ref": "#/channels/socket"},
                "messages": [{"$ref": ref + name} for name in client_frames],
            },
        },
    }
