"""`python -m kirana.api.contract [path]`: write docs/errors.md (`make docs-errors`).

Apart from `catalogue` so that importing the catalogue never imports the whole app (the
routers import it through `document`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import kirana.api.app  # noqa: F401 - imports every router, so every error class
from kirana.api.contract import catalogue


def main() -> None:
    """Write docs/errors.md (the path given, else ./docs/errors.md)."""
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/errors.md")
    target.write_text(catalogue.render_markdown(catalogue.problem_types()))


if __name__ == "__main__":
    main()
