"""Liveness, readiness and metrics endpoints for Kubernetes probes and Prometheus."""
