"""Kirana background workers: the outbox relay and periodic jobs that run beside the API."""
