"""Database access: the ORM base, engines and sessions, and the schema lifecycle (`kirana db`)."""
