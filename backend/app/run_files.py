"""A run's files as the web side keeps them: on this web host's disk for serving, and in the database
so that any other web host can serve them too (it copies a file to its own disk on first use, and
again when the database holds a newer one). Files above MAX_STORED_BYTES stay on the host that
received them."""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from sqlalchemy import select

from .store import StoredFile

MAX_STORED_BYTES = 512 * 1024**2


def keep(sessions, run_id: str, name: str, path: Path) -> None:
    """Record a file this host just wrote at `path` (the run's folder) for the other web hosts."""
    size = path.stat().st_size
    if size > MAX_STORED_BYTES:
        return
    with sessions() as s:
        row = s.get(StoredFile, (run_id, name))
        data, now = path.read_bytes(), time.time()
        if row is None:
            s.add(StoredFile(run_id=run_id, name=name, data=data, size=size, updated=now))
        else:
            row.data, row.size, row.updated = data, size, now
        s.commit()
    os.utime(path, (now, now))  # this host's copy is as new as the stored one


def local_copy(sessions, folder: Path, run_id: str, name: str) -> Path | None:
    """The file on this host's disk, refreshed from the database when it holds a newer one."""
    path = folder / name
    with sessions() as s:
        updated = s.scalar(select(StoredFile.updated).where(StoredFile.run_id == run_id, StoredFile.name == name))
        if updated is not None and (not path.exists() or path.stat().st_mtime < updated - 1e-3):
            data = s.scalar(select(StoredFile.data).where(StoredFile.run_id == run_id, StoredFile.name == name))
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{name}.{uuid.uuid4().hex}.part"
            tmp.write_bytes(data)
            os.utime(tmp, (updated, updated))
            os.replace(tmp, path)
    return path if path.is_file() else None


def local_folder(sessions, folder: Path, run_id: str, names: tuple[str, ...]) -> Path:
    for name in names:
        local_copy(sessions, folder, run_id, name)
    return folder
