"""Zero-downtime safety rules for migrations, checked on the SQL each revision renders.

During a rolling deploy the old release still runs against the migrated schema, and PostgreSQL
takes locks that block traffic for some DDL. Each rule names one such hazard; a migration may
waive a rule with a reason in its module-level `waivers` dict. Pure: SQL text in, findings out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    id: str
    why: str
    fix: str


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            "index-not-concurrent",
            "CREATE INDEX on an existing table blocks writes until the index is built",
            "use CREATE INDEX CONCURRENTLY (op.create_index(..., postgresql_concurrently=True) "
            "inside op.get_context().autocommit_block())",
        ),
        Rule(
            "not-null-column-without-default",
            "adding a NOT NULL column without a default fails on existing rows and breaks "
            "inserts from the release still running",
            "add it nullable or with a server default, backfill, then set NOT NULL later",
        ),
        Rule(
            "set-not-null",
            "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock",
            "add a CHECK (col IS NOT NULL) NOT VALID constraint, VALIDATE it, then SET NOT NULL",
        ),
        Rule(
            "drop-column",
            "the release still running reads and writes the column while the new one rolls out",
            "stop using the column in one release, drop it in a later one (waive with that release)",
        ),
        Rule(
            "rename-column",
            "the release still running uses the old name",
            "add the new column, write both, backfill, switch reads, drop the old one later",
        ),
        Rule(
            "rename-table",
            "the release still running uses the old name",
            "create the new table (or a view) and migrate in steps",
        ),
        Rule(
            "drop-table",
            "the release still running may still query the table",
            "stop using the table in one release, drop it in a later one",
        ),
        Rule(
            "alter-column-type",
            "changing a column's type usually rewrites the table under an ACCESS EXCLUSIVE lock",
            "add a new column of the new type, backfill, switch, drop the old one later",
        ),
        Rule(
            "foreign-key-validated",
            "adding a validated foreign key scans the table while blocking writes on both tables",
            "add it NOT VALID (postgresql_not_valid=True), then VALIDATE CONSTRAINT separately",
        ),
        Rule(
            "check-constraint-validated",
            "adding a validated CHECK constraint scans the table under an exclusive lock",
            "add it NOT VALID, then VALIDATE CONSTRAINT separately",
        ),
        Rule(
            "unique-constraint-blocking",
            "adding a UNIQUE constraint builds its index while blocking writes",
            "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX",
        ),
    )
}


@dataclass(frozen=True)
class Finding:
    revision: str
    rule: str
    statement: str
    waived: str | None = None

    @property
    def blocking(self) -> bool:
        return self.waived is None


_NAME = r'(?:"[^"]+"|[\w.]+)'
_CREATE_TABLE = re.compile(rf"^CREATE TABLE (?:IF NOT EXISTS )?({_NAME})", re.I)
_CREATE_INDEX = re.compile(rf"^CREATE (?:UNIQUE )?INDEX (CONCURRENTLY )?.*? ON ({_NAME})", re.I | re.S)
_ALTER_TABLE = re.compile(rf"^ALTER TABLE (?:ONLY )?(?:IF EXISTS )?({_NAME})\s+(.*)$", re.I | re.S)
_DROP_TABLE = re.compile(rf"^DROP TABLE (?:IF EXISTS )?({_NAME})", re.I)


def _norm(name: str) -> str:
    return name.strip('"').split(".")[-1].strip('"').lower()


def split_statements(sql: str) -> list[str]:
    """Statements of Alembic's offline output, without comments and version bookkeeping."""
    out = []
    for raw in re.split(r";\s*\n", sql):
        lines = [ln for ln in raw.splitlines() if ln.strip() and not ln.strip().startswith("--")]
        stmt = " ".join(ln.strip() for ln in lines).strip().rstrip(";")
        if not stmt or stmt.upper() in {"BEGIN", "COMMIT"} or "alembic_version" in stmt:
            continue
        out.append(stmt)
    return out


def _rules_for_alter(action: str, new_table: bool) -> list[str]:
    a = action.upper()
    found = []
    if re.search(r"\bDROP COLUMN\b", a):
        found.append("drop-column")
    if re.search(r"\bRENAME COLUMN\b", a) or re.match(r"RENAME (?!TO\b)", a):
        found.append("rename-column")
    elif re.match(r"RENAME TO\b", a):
        found.append("rename-table")
    if new_table:
        return found
    for add in re.finditer(r"\bADD COLUMN\b(.*?)(?=,\s*ADD COLUMN\b|$)", a, re.S):
        spec = add.group(1)
        if "NOT NULL" in spec and "DEFAULT" not in spec and "GENERATED" not in spec:
            found.append("not-null-column-without-default")
    if re.search(r"\bALTER COLUMN \S+ (SET DATA )?TYPE\b", a):
        found.append("alter-column-type")
    if re.search(r"\bALTER COLUMN \S+ SET NOT NULL\b", a):
        found.append("set-not-null")
    if re.search(r"\bADD (CONSTRAINT \S+ )?FOREIGN KEY\b", a) and "NOT VALID" not in a:
        found.append("foreign-key-validated")
    if re.search(r"\bADD (CONSTRAINT \S+ )?CHECK\b", a) and "NOT VALID" not in a:
        found.append("check-constraint-validated")
    if re.search(r"\bADD (CONSTRAINT \S+ )?UNIQUE\b", a) and "USING INDEX" not in a:
        found.append("unique-constraint-blocking")
    return found


def lint_revision(revision: str, sql: str, waivers: Mapping[str, str] | None = None) -> list[Finding]:
    """Findings for one revision's upgrade SQL; tables it creates itself are exempt."""
    waivers = dict(waivers or {})
    unknown = sorted(set(waivers) - set(RULES))
    if unknown:
        raise ValueError(f"revision {revision} waives unknown rule(s): {', '.join(unknown)}")
    for rule, reason in waivers.items():
        if not str(reason).strip():
            raise ValueError(f"revision {revision} waives {rule} without a reason")
    created: set[str] = set()
    findings: list[Finding] = []

    def add(rule: str, stmt: str) -> None:
        findings.append(Finding(revision, rule, stmt[:240], waivers.get(rule)))

    for stmt in split_statements(sql):
        if m := _CREATE_TABLE.match(stmt):
            created.add(_norm(m.group(1)))
        elif m := _CREATE_INDEX.match(stmt):
            if not m.group(1) and _norm(m.group(2)) not in created:
                add("index-not-concurrent", stmt)
        elif m := _DROP_TABLE.match(stmt):
            add("drop-table", stmt)
        elif m := _ALTER_TABLE.match(stmt):
            for rule in _rules_for_alter(m.group(2), _norm(m.group(1)) in created):
                add(rule, stmt)
    return findings


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.blocking]
