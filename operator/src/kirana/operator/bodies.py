"""The shapes of the Kubernetes objects the operator reads, as `TypedDict`s.

The operator keeps API objects as the plain dicts the API server sent (no typed client models: they
cost memory and time, see `kirana.operator.kube`); these types name the fields it reads so that
mypy checks every access. Only the fields read are listed (`total=False`: the API server omits
empty ones). Used by `kirana.operator.apply`'s parsers.
"""

from __future__ import annotations

from typing import TypedDict


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    generation: int
    resourceVersion: str
    creationTimestamp: str
    deletionTimestamp: str
    labels: dict[str, str]
    annotations: dict[str, str]


class Condition(TypedDict, total=False):
    """A status condition (Deployment, Job): `status` is "True", "False" or "Unknown"."""

    type: str
    status: str
    reason: str
    message: str


class Container(TypedDict, total=False):
    name: str
    image: str


class PodSpec(TypedDict, total=False):
    containers: list[Container]


class PodTemplateSpec(TypedDict, total=False):
    spec: PodSpec


class DeploymentSpec(TypedDict, total=False):
    replicas: int
    template: PodTemplateSpec


class DeploymentStatus(TypedDict, total=False):
    observedGeneration: int
    replicas: int  # pods of every revision
    updatedReplicas: int
    readyReplicas: int
    availableReplicas: int
    conditions: list[Condition]


class Deployment(TypedDict, total=False):
    metadata: ObjectMeta
    spec: DeploymentSpec
    status: DeploymentStatus


class JobStatus(TypedDict, total=False):
    conditions: list[Condition]  # Complete / Failed (True once finished), SuccessCriteriaMet, ...


class Job(TypedDict, total=False):
    metadata: ObjectMeta
    status: JobStatus


class ContainerStateTerminated(TypedDict, total=False):
    exitCode: int
    reason: str
    message: str  # the termination message (FallbackToLogsOnError: the log's tail on failure)


class ContainerState(TypedDict, total=False):
    terminated: ContainerStateTerminated


class ContainerStatus(TypedDict, total=False):
    name: str
    state: ContainerState


class PodStatus(TypedDict, total=False):
    phase: str
    containerStatuses: list[ContainerStatus]


class Pod(TypedDict, total=False):
    metadata: ObjectMeta
    status: PodStatus
