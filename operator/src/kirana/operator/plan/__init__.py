"""Pure planning for the ShopRelease operator: (spec, status, observed cluster state, now) -> the
next actions and the new status.

Nothing in this package does I/O or imports kopf or a Kubernetes client (an import-linter contract
enforces it): `kirana.operator.apply` observes the cluster, calls `decide`, and carries out what it
returns. That keeps every decision table-testable (tests/unit/operator/).
"""
