"""A minimal Server-Sent Events reader for tests."""
from __future__ import annotations

import json


def read_events(client, url: str, headers: dict | None = None, limit: int | None = None, timeout: float = 120):
    """Yield (id, event, data) until the server ends the stream (or `limit` events)."""
    count = 0
    with client.stream("GET", url, headers=headers or {}, timeout=timeout) as res:
        assert res.status_code == 200, res.read()
        event_id = kind = None
        data = []
        for line in res.iter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                yield event_id, kind, json.loads("\n".join(data))
                count += 1
                event_id, kind, data = None, None, []
                if limit and count >= limit:
                    return
