"""The zero-downtime migration rules, table-driven on rendered SQL."""

from __future__ import annotations

import pytest

from kirana.api.db import safety

EXISTING = "CREATE TABLE other (id int);\n\n"


@pytest.mark.parametrize(
    ("sql", "rules"),
    [
        ("CREATE INDEX ix_a ON orders (a);", {"index-not-concurrent"}),
        ("CREATE UNIQUE INDEX ix_a ON orders (a);", {"index-not-concurrent"}),
        ("CREATE INDEX CONCURRENTLY ix_a ON orders (a);", set()),
        ("CREATE TABLE orders (id int);\n\nCREATE INDEX ix_a ON orders (id);", set()),
        ("ALTER TABLE orders ADD COLUMN tenant TEXT NOT NULL;", {"not-null-column-without-default"}),
        ("ALTER TABLE orders ADD COLUMN tenant TEXT DEFAULT 'x' NOT NULL;", set()),
        ("ALTER TABLE orders ADD COLUMN tenant TEXT;", set()),
        ("ALTER TABLE orders DROP COLUMN tenant;", {"drop-column"}),
        ("ALTER TABLE orders RENAME tenant TO shop;", {"rename-column"}),
        ("ALTER TABLE orders RENAME COLUMN tenant TO shop;", {"rename-column"}),
        ("ALTER TABLE orders RENAME TO purchases;", {"rename-table"}),
        ("DROP TABLE orders;", {"drop-table"}),
        ("ALTER TABLE orders ALTER COLUMN total TYPE BIGINT;", {"alter-column-type"}),
        ("ALTER TABLE orders ALTER COLUMN total SET NOT NULL;", {"set-not-null"}),
        (
            "ALTER TABLE orders ADD CONSTRAINT fk_x FOREIGN KEY(user_id) REFERENCES users (id);",
            {"foreign-key-validated"},
        ),
        (
            "ALTER TABLE orders ADD CONSTRAINT fk_x FOREIGN KEY(user_id) REFERENCES users (id) NOT VALID;",
            set(),
        ),
        ("ALTER TABLE orders ADD CONSTRAINT ck_x CHECK (total > 0);", {"check-constraint-validated"}),
        ("ALTER TABLE orders ADD CONSTRAINT uq_x UNIQUE (code);", {"unique-constraint-blocking"}),
        ("ALTER TABLE orders ADD CONSTRAINT uq_x UNIQUE USING INDEX ix_code;", set()),
        ("CREATE TABLE t (id int);\n\nALTER TABLE t ADD COLUMN x int NOT NULL;", set()),
        ("UPDATE alembic_version SET version_num='x';", set()),
    ],
)
def test_rules(sql: str, rules: set[str]) -> None:
    findings = safety.lint_revision("r1", EXISTING + sql)
    assert {f.rule for f in findings} == rules


def test_waiver_with_reason_unblocks() -> None:
    findings = safety.lint_revision("r1", "DROP TABLE legacy;", {"drop-table": "unused since 0.2"})
    assert [f.waived for f in findings] == ["unused since 0.2"]
    assert safety.blocking(findings) == []


def test_waiver_needs_a_reason_and_a_known_rule() -> None:
    with pytest.raises(ValueError, match="without a reason"):
        safety.lint_revision("r1", "DROP TABLE t;", {"drop-table": " "})
    with pytest.raises(ValueError, match="unknown rule"):
        safety.lint_revision("r1", "DROP TABLE t;", {"drop-tables": "typo"})


def test_offline_output_is_split_into_statements() -> None:
    sql = "-- Running upgrade  -> abc\n\nBEGIN;\n\nCREATE TABLE a (\n  id int\n);\n\nCOMMIT;\n\n"
    assert safety.split_statements(sql) == ["CREATE TABLE a ( id int )"]
