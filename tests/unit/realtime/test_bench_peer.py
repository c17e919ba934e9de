"""The Centrifugo driver of the real-time benchmark, without the binary: its frames, tokens and
configuration. It runs against the real server in tests/bench/test_realtime_peer.py."""

from __future__ import annotations

import uuid

import jwt

from tests.bench import realtime_peer


def test_a_frame_carries_one_reply_per_line_and_pings_are_empty_objects() -> None:
    frame = (
        '{}\n{"push":{"channel":"orders#1","pub":{"data":{"t":1.5},"offset":3}}}\n{"id":2,"subscribe":{}}\n'
    )
    assert realtime_peer.replies(frame) == [
        {},
        {"push": {"channel": "orders#1", "pub": {"data": {"t": 1.5}, "offset": 3}}},
        {"id": 2, "subscribe": {}},
    ]
    assert realtime_peer.replies(b'{"id":1,"connect":{"client":"c"}}') == [
        {"id": 1, "connect": {"client": "c"}}
    ]


def test_the_token_names_the_account_and_the_channel_is_limited_to_it() -> None:
    user = uuid.uuid4()
    claims = jwt.decode(realtime_peer.token("s" * 32, user), "s" * 32, algorithms=["HS256"])
    assert claims["sub"] == str(user) and claims["exp"] > 0
    assert realtime_peer.channel(user) == f"orders#{user}"


def test_the_configuration_keeps_a_numbered_history_like_kiranas() -> None:
    cfg = realtime_peer.config(8000, "redis://127.0.0.1:6379/0", "s", "k")
    assert cfg["engine"] == {
        "type": "redis",
        "redis": {"address": ["redis://127.0.0.1:6379/0"], "prefix": "bench-centrifugo"},
    }
    assert cfg["client"]["token"]["hmac_secret_key"] == "s" and cfg["http_api"]["key"] == "k"
    channel = cfg["channel"]["without_namespace"]
    assert channel["history_size"] == 100 and channel["history_ttl"] == "600s"
    assert (
        channel["force_recovery"] and channel["force_positioning"] and channel["allow_user_limited_channels"]
    )
    assert realtime_peer.version() == "v6.9.1" and realtime_peer.name() == "Centrifugo v6.9.1"
