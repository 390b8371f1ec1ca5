"""Delivering pinwheel.log frames: panels + JSON + HTTP, in a child process of its own.

Why a process: the panel producers and the HTTP client are Python code holding the GIL; on a busy
machine a GIL holder that the OS preempts stalls the training loop for a whole time slice. The
child (nice 19) does all of it; the user's process only writes the arrays down a pipe.

Pipe protocol (no pickle): parent → child, per message, a 4-byte big-endian length, a JSON header
{kind: frame|heartbeat|close, frame: {step, total_steps, wall_time, time, metrics}, layout,
image_shape, arrays: [[name, shape], …]}, then each array's float32 bytes in order. Child → parent:
first {"ready": true} once the producers are loaded, then one JSON line per message
{should_stop, sent, error, cpu} (cpu: the child's CPU seconds so far).

    python -m pinwheel._client_sender URL RUN_ID   (token in PINWHEEL_SENDER_TOKEN, never in argv)
"""
from __future__ import annotations

import json
import os
import struct
import sys
import time

import numpy as np

from ._client_panels import Arrays
from .client import Client, PinwheelError

ARRAY_FIELDS = ("filters", "codes", "inputs", "reconstructions")


def deliver(client: Client, run_id: str, frame: dict, arrays: Arrays | None) -> dict:
    """Panels from the arrays, then the frame POSTed (3 tries while the server is down). The answer
    says whether the loop should stop; a producer failing costs the panels, never the training."""
    from ._client_panels import produce

    error = None
    try:
        panels = produce(arrays) if arrays is not None else {}
    except Exception as exc:
        error, panels = f"panels: {type(exc).__name__}: {exc}", {}
    for attempt in range(3):
        try:
            answer = client.request("POST", f"/api/external/runs/{run_id}/frames",
                                    json={**frame, "panels": panels}).json()
            return {"should_stop": answer["should_stop"], "sent": True, "error": error}
        except PinwheelError as exc:
            error = str(exc)
            if exc.status and exc.status < 500:  # 404/409: the run is gone or over, stop logging to it
                return {"should_stop": exc.status in (404, 409), "sent": False, "error": error}
            time.sleep(min(5.0, 0.5 * 2 ** attempt))
    return {"should_stop": False, "sent": False, "error": error}


def heartbeat(client: Client, run_id: str) -> dict:
    try:
        answer = client.request("GET", f"/api/external/runs/{run_id}/control").json()
        return {"should_stop": answer["should_stop"], "sent": False, "error": None}
    except PinwheelError as exc:
        return {"should_stop": False, "sent": False, "error": str(exc)}


# --- the pipe --------------------------------------------------------------------------------------
def encode(kind: str, frame: dict | None = None, arrays: Arrays | None = None) -> list[bytes]:
    """One message as buffers to write (the arrays' memory itself, not copies)."""
    header: dict = {"kind": kind, "frame": frame, "arrays": []}
    buffers = []
    if arrays is not None:
        header["layout"], header["image_shape"] = arrays.layout, list(arrays.image_shape or [])
        for name in ARRAY_FIELDS:
            value = getattr(arrays, name)
            if value is not None:
                value = np.ascontiguousarray(value, dtype=np.float32)
                header["arrays"].append([name, list(value.shape)])
                buffers.append(memoryview(value).cast("B"))
    head = json.dumps(header).encode()
    return [struct.pack(">I", len(head)), head, *buffers]


def _read_exact(stream, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def decode(stream) -> tuple[str, dict | None, Arrays | None] | None:
    size = _read_exact(stream, 4)
    if size is None:
        return None
    header = json.loads(_read_exact(stream, struct.unpack(">I", size)[0]))
    arrays = None
    if header["arrays"]:
        arrays = Arrays(layout=header.get("layout") or {"type": "list"},
                        image_shape=tuple(header.get("image_shape") or ()) or None)
        for name, shape in header["arrays"]:
            if name not in ARRAY_FIELDS:
                raise ValueError(f"unknown array {name!r}")
            count = int(np.prod(shape)) if shape else 1
            data = _read_exact(stream, 4 * count)
            setattr(arrays, name, np.frombuffer(data, dtype=np.float32).reshape(shape))
    return header["kind"], header["frame"], arrays


def main() -> None:
    url, run_id = sys.argv[1], sys.argv[2]
    try:
        os.nice(19)  # the user's training comes first
    except (AttributeError, OSError):
        pass
    client = Client(url, os.environ.get("PINWHEEL_SENDER_TOKEN"))
    source, sink = sys.stdin.buffer, os.fdopen(os.dup(1), "w")
    sys.stdout = sys.stderr  # a stray print from a library must not corrupt the replies
    from . import panels  # noqa: F401  the producers (and torch) loaded before the first frame, not during it

    sink.write(json.dumps({"ready": True}) + "\n")
    sink.flush()
    while True:
        message = decode(source)
        if message is None or message[0] == "close":
            break
        kind, frame, arrays = message
        reply = heartbeat(client, run_id) if kind == "heartbeat" else deliver(client, run_id, frame, arrays)
        reply["cpu"] = time.process_time()
        sink.write(json.dumps(reply) + "\n")
        sink.flush()
    client.close()


if __name__ == "__main__":
    main()
