"""The ShopRelease custom resource as typed pydantic models: spec (what the SRE asks for) and status
(where the operator stands, which is also its persisted state machine).

Parsed by `kirana.operator.apply` from the raw object; read by the pure planner in
`kirana.operator.plan`. The CRD's OpenAPI schema (charts/kirana-operator/crds/) is the
API server's copy of the same contract; tests/unit/operator/test_spec.py keeps the two in step.
Defaults here equal the CRD's defaults, so a spec read back from the server and one parsed
from a bare manifest behave the same.

Longer than 400 lines because it mirrors the CRD's schema in one file, field for field, as
the test that keeps them in step reads them.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "kirana.dev"
VERSION = "v1alpha1"
PLURAL = "shopreleases"
KIND = "ShopRelease"
BACKUP_KIND = "ShopBackup"
BACKUP_PLURAL = "shopbackups"
BACKUP_MOUNT = "/backups"


class Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are a bug, not input."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Image(Model):
    repository: str = "kirana-api"
    tag: str | None = None  # defaults to spec.version
    pull_policy: str = "IfNotPresent"
    pull_secrets: tuple[str, ...] = ()


class Resources(Model):
    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class EnvVar(Model):
    name: str
    value: str


class ConfigRefs(Model):
    # A Secret with KIRANA_DATABASE_URL, KIRANA_REDIS_URL and KIRANA_SECRET_KEY (envFrom).
    secret_name: str
    config_map_name: str | None = None
    env: tuple[EnvVar, ...] = ()


class ApiSpec(Model):
    replicas: int = 2
    resources: Resources = Resources()
    pod_labels: dict[str, str] = Field(default_factory=dict)
    port: int = 8000
    # How long a pod stays bound to a node that stopped answering (NotReady or unreachable)
    # before Kubernetes evicts it and its Deployment starts a replacement elsewhere; the
    # cluster's default is 300 s.
    node_loss_toleration_seconds: int = 30


class WorkersSpec(Model):
    replicas: int = 1
    resources: Resources = Resources()
    pod_labels: dict[str, str] = Field(default_factory=dict)
    node_loss_toleration_seconds: int = 30  # as ApiSpec's


class JobsSpec(Model):
    resources: Resources = Resources()
    pod_labels: dict[str, str] = Field(default_factory=dict)
    ttl_seconds_after_finished: int = 86400


class MigrationSpec(Model):
    timeout_seconds: int = 600
    backoff_limit: int = 0


class Retention(Model):
    count: int = 7
    max_age_days: int = 14


class PvcStorage(Model):
    claim_name: str


class ServerSideEncryption(StrEnum):
    AES256 = "AES256"  # keys managed by the object store (SSE-S3)
    KMS = "aws:kms"  # a KMS key (kmsKeyId, or the bucket's default)


class S3Storage(Model):
    """An S3-compatible bucket; the Jobs stream archives to it (credentials never reach the
    operator: the Jobs' pods read the Secret's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None  # None: AWS S3 in `region`
    region: str = "us-east-1"
    credentials_secret: str
    server_side_encryption: ServerSideEncryption | None = None
    kms_key_id: str | None = None
    force_path_style: bool = False

    @property
    def root(self) -> str:
        """`s3://bucket/prefix`: the folder the backup folders (pre-upgrade/, ...) live in."""
        prefix = self.prefix.strip("/")
        return f"s3://{self.bucket}" + (f"/{prefix}" if prefix else "")


class BackupStorage(Model):
    """Exactly one of a PersistentVolumeClaim or an S3 bucket (the CRD's CEL rule says so too)."""

    pvc: PvcStorage | None = None
    s3: S3Storage | None = None

    @property
    def root(self) -> str:
        return self.s3.root if self.s3 is not None else BACKUP_MOUNT


class BackupSpec(Model):
    before_upgrade: bool = True
    on_delete: bool = False  # take a last backup before a deleted ShopRelease goes away
    schedule: str | None = None
    timeout_seconds: int = 3600
    retention: Retention = Retention()
    storage: BackupStorage | None = None


class Comparison(StrEnum):
    LESS_THAN = "LessThan"
    LESS_THAN_OR_EQUAL = "LessThanOrEqual"
    GREATER_THAN = "GreaterThan"
    GREATER_THAN_OR_EQUAL = "GreaterThanOrEqual"


class PrometheusGate(Model):
    url: str
    query: str
    threshold: float
    comparison: Comparison = Comparison.LESS_THAN_OR_EQUAL
    pass_on_no_data: bool = True


class HealthGate(Model):
    prometheus: PrometheusGate | None = None


class RolloutSpec(Model):
    max_surge: int = 1
    max_unavailable: int = 0
    progress_deadline_seconds: int = 600
    bake_seconds: int = 60
    pre_stop_seconds: int = 10
    health_gate: HealthGate = HealthGate()


class DatabasePolicy(StrEnum):
    RESTORE = "Restore"  # restore the pre-upgrade backup (the replaced database is kept)
    DOWNGRADE = "Downgrade"  # `kirana db rollback --to <pre-upgrade revision>` with the new image
    FREEZE = "Freeze"  # leave the schema where it is; Degraded until a human acts


class FailurePolicy(Model):
    database: DatabasePolicy = DatabasePolicy.RESTORE


class RestoreRequest(Model):
    """Restore the database from a Completed ShopBackup; a new requestId asks again."""

    backup_name: str
    request_id: str


class ShopReleaseSpec(Model):
    version: str
    image: Image = Image()
    paused: bool = False
    config: ConfigRefs
    api: ApiSpec = ApiSpec()
    workers: WorkersSpec = WorkersSpec()
    jobs: JobsSpec = JobsSpec()
    migration: MigrationSpec = MigrationSpec()
    backup: BackupSpec = BackupSpec()
    rollout: RolloutSpec = RolloutSpec()
    failure_policy: FailurePolicy = FailurePolicy()
    history_limit: int = 10
    restore: RestoreRequest | None = None

    @property
    def image_ref(self) -> str:
        return f"{self.image.repository}:{self.image.tag or self.version}"


class PodTemplate(Model):
    """What in a spec shapes the app's pods (not how many there are): recorded in status while
    the shop is live, and put back with the previous image by a rollback, so that a change made
    in the same edit as a new version (resources, labels, config, port) is undone with it."""

    pull_policy: str
    pull_secrets: tuple[str, ...] = ()
    config: ConfigRefs
    api: ApiSpec
    workers: WorkersSpec
    pre_stop_seconds: int

    @classmethod
    def of(cls, spec: ShopReleaseSpec) -> PodTemplate:
        return cls(
            pull_policy=spec.image.pull_policy,
            pull_secrets=spec.image.pull_secrets,
            config=spec.config,
            api=spec.api,
            workers=spec.workers,
            pre_stop_seconds=spec.rollout.pre_stop_seconds,
        )

    def digest(self) -> str:
        """A short hash of the template, stamped on the Deployments rendered from it."""
        return hashlib.sha256(self.model_dump_json(by_alias=True).encode()).hexdigest()[:16]

    def keeping(self, started: PodTemplate, wanted: PodTemplate) -> PodTemplate:
        """This (running) template, except the fields changed in `wanted` since a release started
        from `started`: an edit made after the release began (a fix of the failed release, a
        rotated secret) applies; what the release itself changed stays with the release."""
        changed = {
            name: getattr(wanted, name)
            for name in type(self).model_fields
            if getattr(wanted, name) != getattr(started, name)
        }
        return self.model_copy(update=changed)

    def over(self, spec: ShopReleaseSpec) -> ShopReleaseSpec:
        """`spec` with this template's pod-shaping fields; replica counts and pacing stay spec's."""
        return spec.model_copy(
            update={
                "image": spec.image.model_copy(
                    update={"pull_policy": self.pull_policy, "pull_secrets": self.pull_secrets}
                ),
                "config": self.config,
                "api": self.api.model_copy(update={"replicas": spec.api.replicas}),
                "workers": self.workers.model_copy(update={"replicas": spec.workers.replicas}),
                "rollout": spec.rollout.model_copy(update={"pre_stop_seconds": self.pre_stop_seconds}),
            }
        )


# -- status: the operator's persisted state ------------------------------------------------------


class Step(StrEnum):
    BACKUP = "Backup"
    MIGRATE = "Migrate"
    ROLLOUT = "Rollout"
    BAKE = "Bake"
    ROLLBACK_APP = "RollbackApp"
    REPAIR_DATABASE = "RepairDatabase"


class Outcome(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class Phase(StrEnum):
    PENDING = "Pending"
    BACKING_UP = "BackingUp"
    MIGRATING = "Migrating"
    ROLLING_OUT = "RollingOut"
    BAKING = "Baking"
    ROLLING_BACK = "RollingBack"
    REPAIRING_DATABASE = "RepairingDatabase"
    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    PAUSED = "Paused"
    RESTORING = "Restoring"
    INVALID_SPEC = "InvalidSpec"  # a mistake the schema cannot catch holds the release back


class Condition(Model):
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""
    observed_generation: int = 0
    last_transition_time: str


class BackupRecord(Model):
    name: str
    path: str
    time: str
    size: int | None = None
    sha256: str | None = None
    schema_revision: str | None = None


class Failure(Model):
    step: Step
    reason: str
    message: str


class Release(Model):
    """The release in flight (or the last one, once `outcome` is set)."""

    version: str
    image: str
    key: str  # short hash of version+image: the suffix of every Job name of this release
    previous_version: str | None = None
    previous_image: str | None = None
    step: Step
    step_started_at: str | None = None  # None: the step is chosen but not begun (pause boundary)
    started_at: str
    backup_path: str | None = None
    from_revision: str | None = None
    to_revision: str | None = None
    schema_touched: bool = False  # a migration ran (or failed) so the database may differ
    # The pod-shaping part of the spec when this release started (see PodTemplate.keeping).
    template: PodTemplate | None = None
    failure: Failure | None = None
    outcome: Outcome | None = None
    # The `kirana.dev/abort` and `kirana.dev/retry` annotations as this release last acted on them
    # (recorded when it starts): only a new value asks for something.
    abort_seen: str | None = None
    retry_seen: str | None = None


class HistoryEntry(Model):
    version: str
    image: str
    outcome: Outcome
    started_at: str
    finished_at: str
    reason: str = ""


class RestoreStep(StrEnum):
    SCALE_DOWN = "ScaleDown"
    RESTORE = "Restore"
    SCALE_UP = "ScaleUp"


class RestoreRecord(Model):
    """The restore in flight (or the last one, once `outcome` is set)."""

    request_id: str
    backup_name: str
    path: str | None = None
    step: RestoreStep
    started_at: str
    finished_at: str | None = None
    schema_revision: str | None = None
    previous_database: str | None = None
    outcome: Outcome | None = None
    message: str = ""


class ShopReleaseStatus(Model):
    model_config = ConfigDict(extra="ignore")  # kopf keeps its own keys in status

    phase: Phase = Phase.PENDING
    observed_generation: int = 0
    current_version: str | None = None
    current_image: str | None = None
    target_version: str | None = None
    schema_revision: str | None = None
    # The pods of current_version as last seen live and ready (None: not recorded yet).
    current_template: PodTemplate | None = None
    release: Release | None = None
    last_backup: BackupRecord | None = None
    last_restore: RestoreRecord | None = None
    history: tuple[HistoryEntry, ...] = ()
    conditions: tuple[Condition, ...] = ()


# -- ShopBackup: one on-demand backup of a ShopRelease's database -------------------------------------


class ReleaseRef(Model):
    name: str


class ShopBackupSpec(Model):
    release_ref: ReleaseRef


class BackupPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"


class ShopBackupStatus(Model):
    model_config = ConfigDict(extra="ignore")

    phase: BackupPhase = BackupPhase.PENDING
    job: str | None = None
    path: str | None = None
    image: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    size: int | None = None
    sha256: str | None = None
    schema_revision: str | None = None
    message: str = ""


def release_key(version: str, image: str, attempt: str = "") -> str:
    """The suffix of a release's Job names; a retry (`attempt`: its request) gets Jobs of its own."""
    text = f"{version}|{image}" + (f"|{attempt}" if attempt else "")
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def parse_spec(raw: dict[str, Any]) -> ShopReleaseSpec:
    return ShopReleaseSpec.model_validate(raw)


def parse_status(raw: dict[str, Any] | None) -> ShopReleaseStatus:
    return ShopReleaseStatus.model_validate(raw or {})


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
