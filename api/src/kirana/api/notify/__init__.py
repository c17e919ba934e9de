"""Outgoing messages to people: SMS (console or an HTTP gateway) and email (console)."""
