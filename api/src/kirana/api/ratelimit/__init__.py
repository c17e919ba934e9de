"""Redis-backed rate limits and progressive lockout, shared by every replica."""
