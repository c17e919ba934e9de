"""Delivery tracking: agents, assignments, live positions, ETA and proof of delivery (docs/delivery.md)."""
