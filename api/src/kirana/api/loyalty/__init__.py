"""Loyalty: points as a ledger, tiers, earn campaigns, achievements and leaderboards.

Driven by the outbox events orders emit (`order.status_changed`), consumed by the workers
(`loyalty.flows`). Nothing below loyalty imports it (an import-linter contract says so).
"""
