"""The contract between the producers of a run's events (the training loop, the worker, the lease
scripts, an external run's routes) and their readers (the persister, the SSE relay, /frames, the
page). Torch-free and FastAPI-free: the backend and the worker both import it, neither imports the other.

A run's events travel in one Redis Stream (`stream_key`), one entry per event:
    {"type": "frame" | "status", "data": <the event as JSON>}
`entry()` writes such an entry from a model and `read_entry()` parses one back, refusing a
malformed event with an error that names the field. Readers add the entry's id (`event_id`);
producers never set it.
"""
from __future__ import annotations

import shlex
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

TASK_NAME = "pinwheel.train_run"
PERSIST_GROUP = "persist"  # the consumer group whose members store frames

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATUSES: tuple[Status, ...] = ("succeeded", "failed", "cancelled")
ACTIVE_STATUSES: tuple[Status, ...] = ("queued", "running")


# --- Redis keys of a run: built here only ---------------------------------------------------------
def stream_key(run_id: str) -> str:
    """The Redis Stream of a run's entries (see the module doc)."""
    return f"run:{run_id}"


def cancel_key(run_id: str) -> str:
    """Set when someone cancels the run; its worker (or an external run's client) stops on it."""
    return f"run:{run_id}:cancel"


def exec_key(run_id: str) -> str:
    """Hash: the newest attempt, the run's state (queued | running | done), lost attempts (leases.py)."""
    return f"run:{run_id}:exec"


def lease_key(run_id: str) -> str:
    """"{attempt}:{worker}" with a TTL its worker renews (leases.py)."""
    return f"run:{run_id}:lease"


LEASE_KEY_PATTERN = lease_key("*")  # SCAN pattern of every run's lease


def run_id_of_key(key: str | bytes) -> str:
    """The run id inside any of the keys above."""
    text = key.decode() if isinstance(key, bytes) else key
    return text.split(":")[1]


def external_alive_key(run_id: str) -> str:
    """Renewed by each call of an external run's client; its expiry ends the run failed."""
    return f"run:{run_id}:external:alive"


def external_ending_key(run_id: str) -> str:
    """Taken by the one web process that ends a silent external run."""
    return f"run:{run_id}:external:ending"


# --- the events -----------------------------------------------------------------------------------
class Frame(BaseModel):
    """A snapshot of a training run: what the page draws and the store keeps, one per step.

    The same shape everywhere a reader hands one out (SSE `frame` events, GET /api/runs/{id}/frames):
    every field present, null when unknown. In the stream, `attempt` is set by the worker (fenced
    publishing) and `event_id` is absent: it is the stream entry's own id."""
    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(None, description="the run's stream entry id (set by readers, not producers)")
    step: int = Field(ge=0, description="training steps done")
    total_steps: int = Field(ge=0, description="the run's length in steps; 0 when unknown")
    wall_time: float = Field(ge=0, description="seconds of training so far, across attempts")
    time: float = Field(description="when the frame was made (Unix seconds)")
    attempt: int | None = Field(None, ge=1, description="the worker attempt that produced it; null for an external run")
    metrics: dict[str, float | None] = Field(description="averaged since the previous frame; null where not finite")
    panels: dict[str, dict[str, Any]] = Field(default_factory=dict, description="panel kind → its payload")


class StatusEvent(BaseModel):
    """A change of a run's status. Only the fields a producer set are written to the stream (and relayed)."""
    model_config = ConfigDict(extra="forbid")

    status: Status
    time: float = Field(description="when it happened (Unix seconds)")
    attempt: int | None = Field(None, ge=0, description="the attempt it concerns (running: the new one)")
    error: str | None = Field(None, description="failed: why")
    reason: str | None = Field(None, description="queued / cancelled: why")
    # running
    environment: dict[str, Any] | None = None
    host: str | None = None
    worker: str | None = None
    resumed_from_step: int | None = Field(None, ge=0, description="the checkpoint's step this attempt resumed at")
    taken_over: bool | None = Field(None, description="this attempt took the run over from a lost worker")
    # queued again (an attempt ended) or ended by the lease reaper
    lost_attempt: int | None = Field(None, description="the attempt whose worker was lost")
    ended_attempt: int | None = Field(None, description="the attempt whose worker handed the run back")
    lost: int | None = Field(None, description="attempts lost so far")

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


Event = Frame | StatusEvent
_KINDS: dict[str, type[BaseModel]] = {"frame": Frame, "status": StatusEvent}


class MalformedEvent(ValueError):
    """A stream entry or event body that breaks the contract; the message names the field."""


def _field_errors(kind: str, exc: ValidationError) -> str:
    return "; ".join(f"{kind}.{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
                     for e in exc.errors(include_url=False))


def parse_event(kind: str, data: str | bytes | dict) -> Event:
    """The event of type `kind` from its JSON (or a dict); MalformedEvent naming the field if it breaks the contract."""
    model = _KINDS.get(kind)
    if model is None:
        raise MalformedEvent(f"type: {kind!r} is neither 'frame' nor 'status'")
    try:
        return model.model_validate(data) if isinstance(data, dict) else model.model_validate_json(data)
    except ValidationError as exc:
        raise MalformedEvent(_field_errors(kind, exc)) from None


def kind_of(event: Event) -> str:
    return "frame" if isinstance(event, Frame) else "status"


def event_json(event: Event) -> str:
    """The event as producers write it: a frame or status carries only the fields that were set."""
    return event.model_dump_json(exclude_unset=True)


def entry(event: Event) -> dict[str, str]:
    """The stream entry (XADD fields) of an event."""
    return {"type": kind_of(event), "data": event_json(event)}


def read_entry(fields: dict, event_id: str | bytes | None = None) -> Event:
    """Parse a stream entry (XREAD's fields, bytes or str keys); a frame gets `event_id`."""
    kind, data = fields.get(b"type", fields.get("type")), fields.get(b"data", fields.get("data"))
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind is None or data is None:
        raise MalformedEvent("entry: needs both 'type' and 'data'")
    event = parse_event(kind, data)
    if event_id is not None and isinstance(event, Frame):
        event.event_id = event_id.decode() if isinstance(event_id, bytes) else event_id
    return event


_PANELS = TypeAdapter(dict[str, dict[str, Any]])  # a Frame's panels on their own (the store keeps them as text)


def panels_json(panels: dict) -> str:
    """A frame's panels as JSON text (pydantic's encoder: several times the stdlib's speed on image frames)."""
    return _PANELS.dump_json(panels).decode()


def parse_panels(text: str | bytes) -> dict[str, dict[str, Any]]:
    return _PANELS.validate_json(text)


def reader_json(event: Event) -> str:
    """The event as readers hand it out (SSE data, /frames): a frame in full (every field, null when
    unknown), a status event with the fields its producer set."""
    return event.model_dump_json() if isinstance(event, Frame) else event.model_dump_json(exclude_unset=True)


# --- routing ---------------------------------------------------------------------------------------
# A run that asks for `cuda` waits in a queue only GPU workers consume; others run anywhere.
# A run that wants a GPU to itself waits in a queue only the first worker of each GPU consumes.
CPU_QUEUE, GPU_QUEUE, WHOLE_GPU_QUEUE = "celery", "gpu", "gpu-whole"


def queue_for(config: dict) -> str:
    train = config.get("train") or {}
    if train.get("whole_gpu"):
        return WHOLE_GPU_QUEUE
    return GPU_QUEUE if train.get("device") == "cuda" else CPU_QUEUE


def join_command(redis_url: str, server_url: str, worker_token: str) -> str:
    """What an admin runs on a GPU machine (in a Pinwheel checkout) to add its GPUs to the lab."""
    return (f"make worker REDIS_URL={shlex.quote(redis_url)} PINWHEEL_SERVER_URL={shlex.quote(server_url)} "
            f"PINWHEEL_WORKER_TOKEN={shlex.quote(worker_token)}")
