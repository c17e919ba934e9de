"""Backups straight to and from S3-compatible object storage, with no local copy of the archive.

Backup: pg_dump writes the custom-format archive to a pipe, which is uploaded in parts while it is
hashed; the object is then read back from the server and its size and sha256 must match what was
sent (else it is deleted), and only then is the manifest (`<archive>.json`) written beside it: an
archive without a manifest is one that never finished. Restore and verify: the archive is read in
a stream into pg_restore while it is hashed; a mismatch with the manifest fails the step before
the restored copy is swapped in (`kirana.api.db.lifecycle.Lifecycle.restore` only swaps after
`_restore_into` returns).

Called by `kirana.api.db.lifecycle` for `s3://` locations; the storage calls are
`kirana.api.db.objectstore`.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import tempfile
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kirana.api.db.objectstore import Location, ObjectStoreError, Store

if TYPE_CHECKING:
    from kirana.api.db.lifecycle import Lifecycle


def _error(message: str) -> Exception:
    from kirana.api.db.lifecycle import LifecycleError

    return LifecycleError(message)


def _last_line(text: str, fallback: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else fallback


def backup(lc: Lifecycle, loc: Location, database: str, now: datetime) -> dict[str, Any]:
    """Stream a consistent pg_dump of the database to `loc`, check it, write its manifest."""
    from kirana.api.db.lifecycle import BACKUP_FORMAT

    store = Store()
    try:
        store.check_bucket(loc)
    except ObjectStoreError as exc:
        raise _error(f"backup failed: {exc}") from exc
    with lc.snapshot() as snap, tempfile.TemporaryFile() as errors:
        lc.progress(f"dumping {database} ({len(snap['tables'])} tables) to {loc}")
        proc = subprocess.Popen(
            lc.dump_args(snap["snapshot"], file=None), stdout=subprocess.PIPE, stderr=errors
        )
        assert proc.stdout is not None
        try:
            size, sha256 = store.upload(loc, proc.stdout)
        except ObjectStoreError as exc:
            proc.kill()
            proc.wait()
            raise _error(f"backup failed: {exc}") from exc
        finally:
            proc.stdout.close()
        code = proc.wait()
        if code != 0:
            errors.seek(0)
            why = _last_line(errors.read().decode(errors="replace"), f"exit {code}")
            _discard(store, loc)
            raise _error(f"pg_dump failed: {why}")
    lc.progress(f"uploaded {size} bytes; reading {loc} back to check it")
    try:
        served = store.read_back(loc)
    except ObjectStoreError as exc:
        raise _error(f"backup failed: {exc}") from exc
    if served != (size, sha256):
        _discard(store, loc)
        raise _error(
            f"backup failed: {loc} reads back as {served[0]} bytes sha256 {served[1][:12]}…, "
            f"not the {size} bytes sha256 {sha256[:12]}… sent; the object was deleted"
        )
    manifest = {
        "format": BACKUP_FORMAT,
        "file": loc.name,
        "database": database,
        "schema_revision": snap["schema_revision"],
        "server_version": snap["server_version"],
        "size": size,
        "sha256": sha256,
        "created_at": now.isoformat(),
        "tables": snap["tables"],
        "server_side_encryption": store.settings.sse,
    }
    try:
        store.put_json(loc.manifest, manifest)
    except ObjectStoreError as exc:
        _discard(store, loc)
        raise _error(f"backup failed: {exc}") from exc
    return manifest | {"path": str(loc), "manifest": str(loc.manifest)}


def _discard(store: Store, loc: Location) -> None:
    # The error being reported matters more; an archive left without a manifest counts as unfinished.
    with contextlib.suppress(ObjectStoreError):
        store.delete(loc)


def read_manifest(loc: Location) -> dict[str, Any]:
    """The manifest of `loc`, once the object exists with the size the manifest gives."""
    from kirana.api.db.lifecycle import BACKUP_FORMAT

    store = Store()
    try:
        manifest = store.get_json(loc.manifest)
        size = store.size(loc) if manifest is not None else None
    except ObjectStoreError as exc:
        raise _error(str(exc)) from exc
    if manifest is None:
        raise _error(f"{loc} has no manifest ({loc.manifest.name}); refusing an unverifiable archive")
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise _error(f"{loc.manifest.name} is not a {BACKUP_FORMAT} manifest")
    if size is None:
        raise _error(f"no backup at {loc}")
    if size != manifest.get("size"):
        raise _error(f"archive is corrupt: {size} bytes stored, manifest says {manifest.get('size')}")
    return dict(manifest)


def restore_stream(args: list[str], loc: Location, manifest: dict[str, Any]) -> None:
    """Run pg_restore `args` reading the archive from `loc` on its standard input; raise (after it
    ran, so the caller drops the scratch copy) when the bytes do not match the manifest."""
    store = Store()
    digest, size = hashlib.sha256(), 0
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=output, stderr=output)
        assert proc.stdin is not None
        failure: Exception | None = None
        try:
            for chunk in store.chunks(loc):
                digest.update(chunk)
                size += len(chunk)
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass  # pg_restore stopped early: its exit code and output say why
        except ObjectStoreError as exc:
            failure = exc
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        code = proc.wait()
        output.seek(0)
        said = output.read().decode(errors="replace")
    if failure is not None:
        raise _error(str(failure))
    if code != 0:
        raise _error(f"pg_restore failed: {_last_line(said, f'exit {code}')}")
    if (size, digest.hexdigest()) != (manifest.get("size"), manifest.get("sha256")):
        raise _error("archive is corrupt: its sha256 does not match the manifest")
