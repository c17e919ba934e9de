"""An example of each request body, by schema name, shown in `/openapi.json`.

Each one validates against its schema (the whole-document test checks every one), and a new
request body schema needs an entry here: the test names the ones that lack it.
"""

from __future__ import annotations

from typing import Any

_ADDRESS = {
    "name": "Asha Rao",
    "phone": "+919800000002",
    "line1": "12, 4th Cross, Indiranagar",
    "line2": "",
    "city": "Bengaluru",
    "state": "Karnataka",
    "pincode": "560038",
}
_PASSWORD = "correct-horse-battery"
_VARIANT = {
    "sku": "ATTA-AASH-5KG",
    "attributes": {"weight": "5 kg"},
    "price_paise": 24500,
    "mrp_paise": 26000,
    "tax_class": "gst_5",
    "stock": 40,
}

REQUESTS: dict[str, dict[str, Any]] = {
    # accounts and two-factor
    "RegisterIn": {"email": "asha@example.com", "password": _PASSWORD, "name": "Asha Rao"},
    "LoginIn": {"identifier": "asha@example.com", "password": _PASSWORD},
    "LoginTwoFactorIn": {"challenge": "eyJhbGciOi...challenge", "method": "totp", "code": "492039"},
    "ChallengeIn": {"challenge": "eyJhbGciOi...challenge"},
    "RefreshIn": {"refresh_token": "rt_5Qm9XbT2vYc8LkR1"},
    "ContactUpdateIn": {"phone": "+919800000002"},
    "RevokeAllIn": {"keep_current": True},
    "PasswordChangeIn": {"current_password": _PASSWORD, "new_password": "staple-battery-horse-42"},
    "ResetRequestIn": {"identifier": "asha@example.com"},
    "ResetIn": {"token": "pr_8fK2mQ9xLp3Zt7Wv", "new_password": "staple-battery-horse-42"},
    "CodeIn": {"code": "492039"},
    "ContactVerifyIn": {"kind": "phone", "code": "492039"},
    "RegisterVerifyIn": {"signup": "su_Xo3vT9kQ2mLp8ZrB4nYc", "code": "492039"},
    "DisableIn": {"password": _PASSWORD},
    "StepUpIn": {"method": "totp", "code": "492039"},
    # access
    "RolePut": {
        "description": "Packs and ships orders",
        "permissions": ["orders:read_all", "orders:update_status"],
        "parents": [],
    },
    "RoleGrantIn": {"role": "store_manager"},
    "PermissionGrantIn": {"permission": "orders:refund", "effect": "allow"},
    "ScopesIn": {"scopes": ["store:blr-1"]},
    # catalog
    "BrandCreate": {"slug": "aashirvaad", "name": "Aashirvaad"},
    "BrandUpdate": {"name": "Aashirvaad Atta"},
    "CategoryCreate": {"slug": "atta-flours", "name": "Atta & Flours", "parent": "staples", "position": 1},
    "CategoryUpdate": {"name": "Atta, Flours & Sooji", "position": 2},
    "ProductCreate": {
        "slug": "aashirvaad-whole-wheat-atta",
        "title": "Aashirvaad Whole Wheat Atta",
        "description": "Stone-ground whole wheat flour.",
        "brand": "aashirvaad",
        "category": "atta-flours",
        "image_urls": ["https://cdn.kirana.dev/p/atta-5kg.jpg"],
        "variants": [_VARIANT],
    },
    "ProductUpdate": {"title": "Aashirvaad Shudh Chakki Atta"},
    "VariantCreate": {**_VARIANT, "sku": "ATTA-AASH-10KG", "price_paise": 47000, "mrp_paise": 49900},
    "VariantUpdate": {"price_paise": 23900, "is_active": True},
    "StockAdjust": {"delta": 25},
    # cart and orders
    "LineAdd": {"sku": "ATTA-AASH-5KG", "quantity": 2},
    "LineSet": {"quantity": 3},
    "MergeRequest": {"guest_token": "Vq3x9K2mZ8pL1tR7wY4cN6bH0sD5fG"},
    "Checkout": {"expected_total_paise": 49000, "store_code": "blr-1", "shipping_address": _ADDRESS},
    "PlaceOrder": {
        "lines": [{"sku": "ATTA-AASH-5KG", "quantity": 2}],
        "expected_total_paise": 49000,
        "shipping_address": _ADDRESS,
    },
    "Transition": {"status": "packed"},
    "Refund": {"reason": "damaged in transit"},
    # payments
    "Verify": {
        "razorpay_order_id": "order_NkX2Yp4Qw8Lm3Z",
        "razorpay_payment_id": "pay_NkX3Aq7Rt2Vb9C",
        "razorpay_signature": "9f2c" * 16,
    },
    "RefundCreate": {"amount_paise": 24500, "reason": "one pack returned"},
    "UpiStart": {"flow": "intent"},
    "CodCollect": {"amount_paise": 49000},
    # delivery
    "AssignmentCreate": {
        "agent_id": "7c2e9a41-5b3d-4f6e-8a1c-2d4b6f8e0a13",
        "destination": {"lat": 12.9719, "lng": 77.6412},
    },
    "PositionCreate": {"lat": 12.9784, "lng": 77.6408, "accuracy_m": 8.5},
    "Confirm": {"code": "4821"},
    "Failure": {"reason": "customer_unavailable", "note": "no answer at the door or on the phone"},
    # loyalty
    "PreferenceUpdate": {"leaderboard_opt_out": True},
    "RedemptionCreate": {"order_id": "0b6f1c1e-8f4e-4a57-9a3b-2f0d8d4b6a10", "points": 200},
    "AdjustmentCreate": {"points": 150, "reason": "goodwill for a late delivery"},
    "CampaignCreate": {
        "name": "Diwali double points",
        "category": "sweets",
        "multiplier_percent": 200,
        "starts_at": "2026-11-01T00:00:00+05:30",
        "ends_at": "2026-11-15T23:59:59+05:30",
    },
    "CampaignUpdate": {"multiplier_percent": 150},
    # search and sync
    "SynonymWrite": {"terms": ["atta", "wheat flour", "gehun ka atta"]},
    "PushRequest": {
        "mutations": [
            {
                "client_mutation_id": "5b0d3c1e-2f4a-4e8b-9c7d-1a2b3c4d5e6f",
                "type": "cart.add",
                "sku": "ATTA-AASH-5KG",
                "quantity": 1,
            }
        ]
    },
}
