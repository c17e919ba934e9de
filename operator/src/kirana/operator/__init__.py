"""Kirana operator: reconciles ShopRelease custom resources (backup, migrate, roll out, gate)."""
