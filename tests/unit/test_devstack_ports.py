"""`devstack.free_port` never hands out a port `kirana run` prefers for its own servers."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from kirana.api import devstack


class _Kernel:
    """socket.socket stand-in whose bind to port 0 gets the next port of `ports`."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports

    def __call__(self, *_args: Any) -> _Kernel:
        return self

    def __enter__(self) -> _Kernel:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def bind(self, address: tuple[str, int]) -> None:
        assert address == ("127.0.0.1", 0)
        self.port = self.ports.pop(0)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_a_reserved_port_the_kernel_offers_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = _Kernel([devstack.DEFAULT_PG_PORT, devstack.DEFAULT_REDIS_PORT, 41234])
    monkeypatch.setattr(socket, "socket", kernel)
    assert devstack.free_port() == 41234
    assert kernel.ports == []


def test_the_reserved_ports_are_the_ones_kirana_run_prefers() -> None:
    from kirana.api import runner

    assert {runner.DEFAULT_PG_PORT, runner.DEFAULT_REDIS_PORT, runner.DEFAULT_FAKE_RAZORPAY_PORT} == (
        devstack.RESERVED_PORTS
    )
    port = devstack.free_port()
    with socket.socket() as s:  # really free: it binds
        s.bind(("127.0.0.1", port))
