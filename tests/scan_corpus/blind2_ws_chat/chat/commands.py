from collections.abc import Awaitable, Callable

Handler = Callable[..., Awaitable[str]]

COMMANDS: dict[str, Handler] = {}  # ok: SLP501 decorator registry filled at import time


def command(name: str):
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn

    return register


@command("ping")
async def ping(hub, user: str, arg: str) -> str:
    return "pong"


@command("who")
async def who(hub, user: str, arg: str) -> str:
    return ", ".join(sorted(hub.online(arg)))


async def dispatch(hub, user: str, line: str) -> str | None:
    name, _, arg = line[1:].partition(" ")
    handler = COMMANDS.get(name)
    return await handler(hub, user, arg) if handler else None
