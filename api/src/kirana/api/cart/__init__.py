"""Carts: guest carts by token, user carts, merge at login, server-side re-pricing."""
