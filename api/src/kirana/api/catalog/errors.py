"""Problems about buying a SKU, shared by the cart, checkout and sync push.

Subclasses of the shared vocabulary in `kirana.api.errors`, so they render as problem+json with
their own `type` and a machine-readable `extra` (e.g. which SKUs, how many are left).
"""

from __future__ import annotations

from kirana.api.errors import Conflict, InvalidInput, InvalidState


class UnknownSku(InvalidInput):
    code, title = "unknown-sku", "Unknown SKU"


class NotSellable(InvalidState):
    code, title = "not-sellable", "Not for sale"


class OutOfStock(Conflict):
    code, title = "out-of-stock", "Out of stock"


class PriceChanged(Conflict):
    code, title = "price-changed", "Price changed"
