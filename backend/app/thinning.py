"""Frame storage thinning for long runs: the timeline always covers the whole run.

A run keeps every frame while it has at most 2 × `keep` of them (short runs are never thinned).
Past that, the frames older than the newest `recent` are thinned to evenly spaced steps so that
`keep` frames remain in all: the first frame stays, the newest `recent` stay, and the older ones
are the nearest stored frames to `keep − recent` evenly spaced steps. The count then grows to
2 × `keep` again before the next thinning, so a run never holds fewer than `keep` frames once it
has had that many, and the cost is one delete every `keep` frames.
"""
from __future__ import annotations

import numpy as np
from sqlalchemy import delete, func, select

from .store import Frame


def frames_to_drop(steps: list[int], keep: int, recent: int) -> list[int]:
    """Indices into `steps` (sorted, one per stored frame) of the frames to delete."""
    n = len(steps)
    recent = max(1, min(recent, keep - 1))
    if keep < 2 or n <= 2 * keep:
        return []
    older = np.asarray(steps[: n - recent], dtype=np.float64)
    want = keep - recent  # frames kept among the older ones (the first one included)
    targets = np.linspace(older[0], older[-1], want)
    kept: set[int] = set()
    for t in targets:  # nearest not-yet-kept frame to every target step
        i = int(np.searchsorted(older, t))
        candidates = [j for j in (i - 1, i, i + 1) if 0 <= j < len(older) and j not in kept]
        if candidates:
            kept.add(min(candidates, key=lambda j: (abs(older[j] - t), j)))
    kept.add(0)
    free = iter(j for j in range(len(older)) if j not in kept)
    while len(kept) < want:  # collisions: top up with the remaining frames so the count is exact
        kept.add(next(free))
    return [j for j in range(len(older)) if j not in kept]


def thin_run(session, run_id: str, keep: int, recent: int) -> int:
    """Delete the frames `frames_to_drop` names for one run (caller commits). Returns how many.
    keep/recent come from the app's own Settings (frames_keep, frames_keep_recent), passed in."""
    count = session.scalar(select(func.count()).select_from(Frame).where(Frame.run_id == run_id))
    if count <= 2 * keep:  # the common case: one indexed count a batch
        return 0
    rows = session.execute(select(Frame.id, Frame.step).where(Frame.run_id == run_id)
                           .order_by(Frame.step, Frame.id)).all()
    if len(rows) <= 2 * keep:
        return 0
    drop = frames_to_drop([r.step for r in rows], keep, recent)
    ids = [rows[i].id for i in drop]
    for chunk in range(0, len(ids), 500):
        session.execute(delete(Frame).where(Frame.id.in_(ids[chunk:chunk + 500])))
    return len(ids)
