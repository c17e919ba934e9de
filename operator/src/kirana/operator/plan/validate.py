"""Mistakes in a ShopRelease that the CRD schema cannot catch: a backup schedule that is not a
cron expression Kubernetes takes, and objects the release names that do not exist (the config
Secret and ConfigMap, the backup PersistentVolumeClaim or S3 credentials Secret, the image pull
Secrets).

Called by `kirana.operator.plan.release.decide` before a release takes its first step, with what
`kirana.operator.apply.observe` found missing. A problem holds the release back (phase and
condition `InvalidSpec`, naming the object); the operator looks again every few seconds, so the
release starts once the object appears. Pure, like the rest of `kirana.operator.plan`.
"""

from __future__ import annotations

from croniter import croniter  # type: ignore[import-untyped]

from kirana.operator.spec import ShopReleaseSpec

# The descriptors Kubernetes' CronJob controller (robfig/cron's standard parser) accepts.
CRON_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def cron_problem(schedule: str) -> str:
    """Why `schedule` is not a CronJob schedule ("" when it is one): five fields, or a descriptor."""
    text = schedule.strip()
    if text in CRON_DESCRIPTORS:
        return ""
    if text.startswith(("TZ=", "CRON_TZ=")):
        return "a time zone in the schedule is not supported by CronJobs"
    if len(text.split()) != 5:
        return "a schedule has five fields (minute hour day-of-month month day-of-week)"
    if not croniter.is_valid(text):
        return "a field is out of range or malformed"
    return ""


def references(spec: ShopReleaseSpec) -> tuple[tuple[str, str], ...]:
    """(kind, name) of every object the release's pods need before they can start."""
    refs: list[tuple[str, str]] = [("Secret", spec.config.secret_name)]
    if spec.config.config_map_name:
        refs.append(("ConfigMap", spec.config.config_map_name))
    storage = spec.backup.storage
    if storage is not None and storage.pvc is not None:
        refs.append(("PersistentVolumeClaim", storage.pvc.claim_name))
    if storage is not None and storage.s3 is not None:
        refs.append(("Secret", storage.s3.credentials_secret))
    refs += [("Secret", name) for name in spec.image.pull_secrets]
    return tuple(dict.fromkeys(refs))


def problems(spec: ShopReleaseSpec, missing: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """Everything wrong with the spec, one sentence each ("" problems: the release may start)."""
    found: list[str] = []
    if spec.backup.schedule is not None:
        why = cron_problem(spec.backup.schedule)
        if why:
            found.append(
                f"spec.backup.schedule {spec.backup.schedule!r} is not a valid cron expression: {why}"
            )
    where = {
        ("Secret", spec.config.secret_name): "spec.config.secretName",
        ("ConfigMap", spec.config.config_map_name or ""): "spec.config.configMapName",
    }
    storage = spec.backup.storage
    if storage is not None and storage.pvc is not None:
        where[("PersistentVolumeClaim", storage.pvc.claim_name)] = "spec.backup.storage.pvc.claimName"
    if storage is not None and storage.s3 is not None:
        where.setdefault(
            ("Secret", storage.s3.credentials_secret), "spec.backup.storage.s3.credentialsSecret"
        )
    for kind, name in missing:
        field = where.get((kind, name), "spec.image.pullSecrets")
        found.append(f"{kind} {name} ({field}) does not exist")
    return tuple(found)
