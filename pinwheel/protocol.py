"""Names shared by the backend and the worker (plain strings; neither side imports the other)."""

TASK_NAME = "pinwheel.train_run"
PERSIST_GROUP = "persist"  # the consumer group whose members store frames


def stream_key(run_id: str) -> str:
    """The Redis Stream of a run's entries: {"type": "frame" | "status", "data": <json>}."""
    return f"run:{run_id}"


def cancel_key(run_id: str) -> str:
    return f"run:{run_id}:cancel"


TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running")

# Routing: a run that asks for `cuda` waits in a queue only GPU workers consume; others run anywhere.
# A run that wants a GPU to itself waits in a queue only the first worker of each GPU consumes.
CPU_QUEUE, GPU_QUEUE, WHOLE_GPU_QUEUE = "celery", "gpu", "gpu-whole"


def queue_for(config: dict) -> str:
    train = config.get("train") or {}
    if train.get("whole_gpu"):
        return WHOLE_GPU_QUEUE
    return GPU_QUEUE if train.get("device") == "cuda" else CPU_QUEUE


def join_command(redis_url: str, server_url: str, worker_token: str) -> str:
    """What an admin runs on a GPU machine (in a Pinwheel checkout) to add its GPUs to the lab."""
    import shlex

    return (f"make worker REDIS_URL={shlex.quote(redis_url)} PINWHEEL_SERVER_URL={shlex.quote(server_url)} "
            f"PINWHEEL_WORKER_TOKEN={shlex.quote(worker_token)}")
