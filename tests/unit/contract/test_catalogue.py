"""docs/errors.md lists every problem type with advice, and is current."""

from __future__ import annotations

from pathlib import Path

import kirana.api.app  # noqa: F401 - imports every router, so every error class
from kirana.api.contract import catalogue

DOC = Path(__file__).resolve().parents[3] / "docs" / "errors.md"


def test_every_problem_type_has_advice() -> None:
    codes = {t.code for t in catalogue.problem_types()}
    assert {"not-found", "idempotency-key-required", "validation-error", "payload-too-large"} <= codes
    assert sorted(codes - set(catalogue.ADVICE)) == []
    assert sorted(set(catalogue.ADVICE) - codes) == []  # no advice for a type that is gone


def test_docs_errors_md_is_current() -> None:
    expected = catalogue.render_markdown(catalogue.problem_types())
    assert DOC.read_text() == expected, "run `make docs-errors`"
