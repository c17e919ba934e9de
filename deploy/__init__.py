"""Deploying a Kirana shop to a cluster: `python -m deploy` (make deploy-staging, deploy-prod,
deploy-rollback, health-check; the release workflow calls the same targets).

A deploy installs or upgrades charts/kirana at one version into an environment's namespace with
that environment's values file, waits until the operator reports the ShopRelease Ready at that
version, then runs the health checkpoints (`deploy.checks`). A failed deploy is rolled back
(`helm rollback` to the revision that ran before, which the operator carries out as a release of
the previous version) and exits 1. See docs/operations/deployment-guide.md.
"""
