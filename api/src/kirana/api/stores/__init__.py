"""Stores the shop sells from: the codes orders and staff scopes (`store:<code>`) refer to."""
