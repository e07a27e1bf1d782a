import json
from dataclasses import dataclass
from datetime import datetime


@dataclass(slots=True)
class Event:
    event_id: str
    user_id: int
    kind: str
    ts: datetime
    payload: dict


def decode(raw: bytes) -> Event:
    data = json.loads(raw)
    return Event(
        event_id=data["id"],
        user_id=int(data["user"]),
        kind=data["type"],
        ts=datetime.fromisoformat(data["ts"]),
        payload=data.get("payload", {}),
    )
