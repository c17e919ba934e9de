"""The backups under one storage root, a folder or an `s3://bucket/prefix`: listed, and pruned to a
retention, the same way for both.

A root holds one folder per origin (`scheduled/`, `pre-upgrade/`, `on-demand/`, `final/`), each
archive `<name>.dump` with its manifest `<name>.dump.json` beside it. Pruning keeps, per folder,
the newest archive whatever the retention says, then at most `keep` archives none older than
`max_age_days`; `final/` (the last backup of a deleted shop) is never pruned.

Called by `kirana db list` and `kirana db prune` (the operator's backup Jobs run the latter after
each backup, see `kirana.operator.plan.resources`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kirana.api.db.objectstore import Location, Store, is_remote

FOLDERS = ("scheduled", "pre-upgrade", "on-demand", "final")
PRUNED = ("scheduled", "pre-upgrade", "on-demand")


@dataclass(frozen=True)
class Archive:
    location: str
    folder: str
    size: int
    modified: datetime
    complete: bool  # its manifest exists (an archive without one never finished)

    def as_dict(self) -> dict[str, object]:
        return {
            "location": self.location,
            "folder": self.folder,
            "size": self.size,
            "modified": self.modified.isoformat(),
            "complete": self.complete,
        }


def list_archives(root: str | Path) -> list[Archive]:
    """Every archive under `root`, newest first within each folder."""
    found = _remote(str(root)) if is_remote(root) else _local(Path(root))
    return sorted(found, key=lambda a: (FOLDERS.index(a.folder), -a.modified.timestamp(), a.location))


def _local(root: Path) -> list[Archive]:
    out = []
    for folder in FOLDERS:
        for f in (root / folder).glob("*.dump") if (root / folder).is_dir() else ():
            st = f.stat()
            modified = datetime.fromtimestamp(st.st_mtime, UTC)
            complete = f.with_name(f.name + ".json").exists()
            out.append(Archive(str(f), folder, st.st_size, modified, complete))
    return out


def _remote(root: str) -> list[Archive]:
    base = Location.parse(root)
    objects = Store().list(base)
    keys = {loc.key for loc, _, _ in objects}
    out = []
    for loc, size, modified in objects:
        rest = loc.key[len(base.key) :].lstrip("/") if base.key else loc.key
        folder, _, name = rest.partition("/")
        if folder in FOLDERS and name.endswith(".dump") and "/" not in name:
            out.append(Archive(str(loc), folder, size, modified, loc.key + ".json" in keys))
    return out


def prune(root: str | Path, *, keep: int, max_age_days: int, now: datetime | None = None) -> list[str]:
    """Delete what the retention no longer keeps (archive and manifest); the locations deleted."""
    now = now or datetime.now(UTC)
    oldest = now - timedelta(days=max_age_days)
    doomed: list[str] = []
    by_folder: dict[str, list[Archive]] = {}
    for a in list_archives(root):
        by_folder.setdefault(a.folder, []).append(a)
    for folder in PRUNED:
        for n, a in enumerate(by_folder.get(folder, []), start=1):
            if n > 1 and (n > keep or a.modified < oldest):
                doomed.append(a.location)
    store = Store() if is_remote(root) else None
    for location in doomed:
        if store is not None:
            loc = Location.parse(location)
            store.delete(loc)
            store.delete(loc.manifest)
        else:
            Path(location).unlink(missing_ok=True)
            Path(location + ".json").unlink(missing_ok=True)
    return doomed
