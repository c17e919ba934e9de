"""Access control: who the caller is (`Principal`) and what every route requires of them."""
