"""Orders: checkout without overselling, stock reservations, the order state machine."""
