"""Open-loop HTTP load with Vegeta: requests sent at a fixed rate whatever the server's answers
take, so the latency it reports is what a sender at that rate sees (a closed-loop tool such as
wrk only slows down when the server does, and its tail hides the queueing).

`attack` writes the requests as Vegeta's JSON targets (one line each, body base64) and reads
`vegeta report -type=json`. The binary is pinned in testbed/versions.env and built into the
cache by `testbed/tools.sh vegeta` on first use.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.bench.harness import cached_tool


@dataclass(frozen=True)
class Attack:
    requested_rate: float
    achieved_rate: float  # requests sent per second
    throughput: float  # successful answers per second
    success: float  # share of 2xx answers
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    status_codes: dict[str, int]
    errors: list[str]

    @property
    def kept_up(self) -> bool:
        """The rate was sent (within 1 %) and every request succeeded."""
        return self.achieved_rate >= 0.99 * self.requested_rate and self.success == 1.0


def attack(
    url: str,
    requests: Iterable[tuple[bytes, dict[str, str]]],
    *,
    rate: int,
    seconds: float,
    connections: int,
    tmp: Path,
) -> Attack:
    """POST each (body, headers) once to `url` at `rate` per second over at most `connections`
    connections (and as many in-flight requests); give at least rate * seconds requests."""
    targets = tmp / "vegeta-targets.jsonl"
    with targets.open("w") as f:
        for body, headers in requests:
            line = {
                "method": "POST",
                "url": url,
                "body": base64.b64encode(body).decode(),
                "header": {k: [v] for k, v in headers.items()},
            }
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
    exe = str(cached_tool("vegeta"))
    results = tmp / "vegeta-results.bin"
    subprocess.run(
        [
            exe,
            "attack",
            "-format=json",
            f"-targets={targets}",
            f"-rate={rate}/1s",
            f"-duration={int(seconds)}s",
            f"-connections={connections}",
            f"-max-connections={connections}",
            f"-workers={connections}",
            f"-max-workers={connections}",
            "-timeout=10s",
            f"-output={results}",
        ],
        check=True,
        capture_output=True,
    )
    report = subprocess.run(
        [exe, "report", "-type=json", str(results)], check=True, capture_output=True, text=True
    ).stdout
    d = json.loads(report)
    lat = d["latencies"]
    return Attack(
        requested_rate=float(rate),
        achieved_rate=float(d["rate"]),
        throughput=float(d["throughput"]),
        success=float(d["success"]),
        p50_ms=lat["50th"] / 1e6,
        p95_ms=lat["95th"] / 1e6,
        p99_ms=lat["99th"] / 1e6,
        max_ms=lat["max"] / 1e6,
        requests=int(d["requests"]),
        status_codes={str(k): int(v) for k, v in (d.get("status_codes") or {}).items()},
        errors=list(d.get("errors") or [])[:5],
    )
