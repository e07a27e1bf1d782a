"""Offload to the process pool, print the worker's pid, then die by SIGTERM (no atexit)."""

import asyncio
import os
import signal

import slipstream as ss


async def main() -> None:
    print(await ss.offload(os.getpid, kind="process"), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    asyncio.run(main())
