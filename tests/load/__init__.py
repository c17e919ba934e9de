"""Load runs with Locust against a running shop (`make load`); see docs/load-testing.md."""
