class Scheduler:
    """A cron-like table of named jobs (in memory)."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def create_task(self, name: str) -> str:
        self.jobs.append(name)
        return name
