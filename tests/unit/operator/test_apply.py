"""apply's parsers: what the operator makes of the Deployments, Jobs, pods and Prometheus answers it
reads. Each row is a shape the API server (or Prometheus) really sends."""

from __future__ import annotations

from typing import Any

import pytest

from kirana.operator import bodies
from kirana.operator.apply import (
    _deployment_state,
    _parse_json_output,
    job_phase,
    parse_query_response,
    termination_message,
)
from kirana.operator.plan.model import DeploymentState, HealthSample, JobPhase


def deployment(status: dict[str, Any] | None = None, generation: int = 2, **spec: Any) -> bodies.Deployment:
    d: dict[str, Any] = {
        "metadata": {
            "name": "shop-api",
            "generation": generation,
            "annotations": {"kirana.dev/pod-template": "t1"},
        },
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "kirana", "image": "shop:2"}]}}}
        | spec,
    }
    if status is not None:
        d["status"] = status
    return d  # type: ignore[return-value]


def test_a_missing_deployment_is_none() -> None:
    assert _deployment_state(None) is None


def test_a_deployment_the_controller_has_not_seen_counts_nothing() -> None:
    state = _deployment_state(deployment())
    assert state == DeploymentState(
        image="shop:2", replicas=3, generation=2, observed_generation=0, template="t1"
    )
    assert state is not None and not state.rolled_out("shop:2", 3)


def test_a_rolled_out_deployment() -> None:
    status = {
        "observedGeneration": 2,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
    }
    state = _deployment_state(deployment(status))
    assert state is not None
    assert (state.total, state.updated, state.ready, state.available) == (3, 3, 3, 3)
    assert state.rolled_out("shop:2", 3)
    assert not state.rolled_out("shop:1", 3)


STUCK = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}


@pytest.mark.parametrize(
    ("observed", "conditions", "exceeded"),
    [
        (2, [STUCK], True),
        (1, [STUCK], False),  # the condition is about the previous generation
        (2, [{**STUCK, "status": "True", "reason": "NewReplicaSetAvailable"}], False),
        (2, [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}], False),
        (2, [], False),
    ],
)
def test_progress_deadline(observed: int, conditions: list[dict[str, str]], exceeded: bool) -> None:
    state = _deployment_state(deployment({"observedGeneration": observed, "conditions": conditions}))
    assert state is not None and state.deadline_exceeded is exceeded


def job(*conditions: dict[str, str]) -> bodies.Job:
    return {"metadata": {"name": "j"}, "status": {"conditions": list(conditions)}}  # type: ignore[typeddict-item]


@pytest.mark.parametrize(
    ("j", "phase", "message"),
    [
        ({"metadata": {"name": "j"}}, JobPhase.RUNNING, ""),
        (job(), JobPhase.RUNNING, ""),
        (
            job({"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}),
            JobPhase.SUCCEEDED,
            "",
        ),
        (job({"type": "Complete", "status": "False"}), JobPhase.RUNNING, ""),
        (job({"type": "FailureTarget", "status": "True"}), JobPhase.RUNNING, ""),
        (
            job(
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
            ),
            JobPhase.FAILED,
            "Job has reached the specified backoff limit",
        ),
        (
            job({"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}),
            JobPhase.FAILED,
            "DeadlineExceeded",
        ),
        (job({"type": "Failed", "status": "True"}), JobPhase.FAILED, "failed"),
    ],
)
def test_job_phase(j: bodies.Job, phase: JobPhase, message: str) -> None:
    assert job_phase(j) == (phase, message)


def test_termination_message_is_the_last_containers() -> None:
    pod: bodies.Pod = {
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 1, "message": "  first\n"}}},
                {"name": "b", "state": {"running": {}}},  # type: ignore[typeddict-unknown-key]
                {"name": "c", "state": {"terminated": {"exitCode": 1, "message": "alembic: boom\n"}}},
            ],
        }
    }
    assert termination_message(pod) == "alembic: boom"
    assert termination_message({"status": {"phase": "Pending"}}) == ""


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (None, None),
        ("", None),
        ("no json here", None),
        ('{"changed": true, "to": "r2"}', {"changed": True, "to": "r2"}),
        ('INFO  [alembic] Running upgrade r1 -> r2\n{"changed": true}\ntrailing log', {"changed": True}),
        ("[1, 2]", None),
        ('{"broken": ', None),
        ('Traceback ...\n{"size": 10, "sha256": "ab"}', {"size": 10, "sha256": "ab"}),
    ],
)
def test_parse_json_output(text: str | None, parsed: dict[str, Any] | None) -> None:
    assert _parse_json_output(text) == parsed


@pytest.mark.parametrize(
    ("body", "sample"),
    [
        (
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "0.02"]}]},
            },
            HealthSample(value=0.02),
        ),
        ({"status": "success", "data": {"resultType": "vector", "result": []}}, HealthSample(value=None)),
        (
            {"status": "success", "data": {"resultType": "scalar", "result": [1, "5"]}},
            HealthSample(value=5.0),
        ),
        ({"status": "success", "data": {}}, HealthSample(value=None)),
        (
            {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"},
            HealthSample(value=None, error="parse error at char 3"),
        ),
        ({"status": "error"}, HealthSample(value=None, error="query failed")),
    ],
)
def test_parse_query_response(body: Any, sample: HealthSample) -> None:
    assert parse_query_response(body) == sample


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        {"status": "success", "data": "x"},
        {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "NaN?"]}]}},
        {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}},
        {"status": "success", "data": {"resultType": "scalar", "result": None}},
    ],
)
def test_an_unreadable_answer_is_an_error_not_a_crash(body: Any) -> None:
    sample = parse_query_response(body)
    assert sample.value is None and sample.error and sample.error.startswith("unexpected response")
