"""Idempotency-Key handling (Stripe semantics) for every unsafe cart, checkout and order endpoint."""
