"""Payments: Razorpay orders and payments, signed webhooks, the money ledger, the reconciler.

The official `razorpay` SDK (`gateway.py`) is the only client of Razorpay's API. Money is
integer paise; every movement is a ledger row (`models.LedgerEntry`) and an order's paid and
refunded totals derive from those rows.
"""
