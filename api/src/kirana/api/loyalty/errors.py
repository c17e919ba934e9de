"""Loyalty's refusals, rendered as problem+json with their own `type`."""

from __future__ import annotations

from kirana.api.errors import InvalidInput, InvalidState


class InsufficientPoints(InvalidInput):
    code, title = "points-insufficient", "Not enough points"


class RedemptionTooLarge(InvalidInput):
    code, title = "redemption-exceeds-limit", "Redemption exceeds what this order allows"


class RedemptionClosed(InvalidState):
    code, title = "redemption-closed", "Points cannot be used on this order now"


class CampaignWindowInvalid(InvalidInput):
    code, title = "campaign-window-invalid", "Campaign ends before it starts"
