"""`GatewayDep`: the app's one Razorpay gateway (built at start-up from settings)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kirana.api.payments.gateway import Gateway


async def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.payments_gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
