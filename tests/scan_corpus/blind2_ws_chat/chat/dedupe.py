import time

_seen: dict[str, float] = {}  # ok: SLP501 expired entries are deleted
TTL = 60.0


def first_time(message_id: str) -> bool:
    now = time.monotonic()
    for key, ts in list(_seen.items()):
        if now - ts > TTL:
            del _seen[key]
    if message_id in _seen:
        return False
    _seen[message_id] = now
    return True
