"""The hash chain behind the audit log, and its verification. Pure: rows in, findings out.

Each entry's hash is SHA-256 over the previous entry's hash and a canonical JSON rendering of
the entry's own fields, so editing, inserting or deleting any entry breaks the chain from that
point on. Used by `audit.service.record` (to append) and `kirana audit verify` (to check).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_ip",
    "user_agent",
    "request_id",
    "action",
    "outcome",
    "target_type",
    "target_id",
    "before",
    "after",
)


def plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if value is None or isinstance(value, (str, int, bool, dict, list)):
        return value
    return str(value)


def canonical(entry: Mapping[str, Any]) -> bytes:
    body = {name: plain(entry.get(name)) for name in HASHED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(entry)).hexdigest()


@dataclass(frozen=True)
class Finding:
    seq: int | None
    id: int | None
    problem: str

    def __str__(self) -> str:
        return f"entry seq={self.seq} id={self.id}: {self.problem}"


@dataclass(frozen=True)
class Report:
    checked: int
    findings: tuple[Finding, ...]
    head_seq: int | None
    head_hash: str

    @property
    def ok(self) -> bool:
        return not self.findings


def verify(rows: Iterable[Mapping[str, Any]], *, max_findings: int = 100) -> Report:
    """Check rows given in `seq` order (each with id, seq, prev_hash, hash and the hashed fields).

    - an edited entry: its stored hash does not match its content;
    - a deleted entry: a gap in `seq`, or the next entry's `prev_hash` does not link;
    - an inserted entry: a repeated `seq`, or a link or hash that does not fit.
    """
    findings: list[Finding] = []
    prev_hash = GENESIS
    expected_seq = 1
    checked = 0
    head_seq: int | None = None
    for row in rows:
        checked += 1
        seq, rid = int(row["seq"]), row.get("id")
        if seq != expected_seq:
            what = (
                "missing entries (deleted?)"
                if seq > expected_seq
                else "out-of-order or duplicate seq (inserted?)"
            )
            findings.append(Finding(seq, rid, f"expected seq {expected_seq}: {what}"))
        if row["prev_hash"] != prev_hash:
            findings.append(
                Finding(
                    seq,
                    rid,
                    "prev_hash does not link to the previous entry (deleted or inserted entry before it)",
                )
            )
        if entry_hash(row["prev_hash"], row) != row["hash"]:
            findings.append(Finding(seq, rid, "content does not match its hash (edited or forged entry)"))
        prev_hash = row["hash"]
        expected_seq = seq + 1
        head_seq = seq
        if len(findings) >= max_findings:
            break
    return Report(checked=checked, findings=tuple(findings), head_seq=head_seq, head_hash=prev_hash)
