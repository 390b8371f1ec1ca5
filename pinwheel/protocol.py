"""Names shared by the backend and the worker (plain strings; neither side imports the other)."""

TASK_NAME = "pinwheel.train_run"
PERSIST_GROUP = "persist"  # the consumer group whose members store frames


def stream_key(run_id: str) -> str:
    """The Redis Stream of a run's entries: {"type": "frame" | "status", "data": <json>}."""
    return f"run:{run_id}"


def cancel_key(run_id: str) -> str:
    return f"run:{run_id}:cancel"


TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
