"""Kirana shop API: the domains, their HTTP routes and the `kirana` command line."""

__version__ = "0.1.0"
