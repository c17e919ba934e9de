"""Accounts and sessions: registration, login, tokens, password change and reset."""
