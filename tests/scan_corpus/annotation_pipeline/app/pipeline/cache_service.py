from sqlalchemy import Engine, text


class CacheService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def clear_namespace_sync(self, namespace: str) -> int:
        deleted = 0
        with self.engine.begin() as conn:
            while True:
                result = conn.execute(  # ok: SLP202 chunked delete in a while loop
                    text("DELETE FROM cache_entries WHERE ctid IN (SELECT ctid FROM cache_entries WHERE namespace = :ns LIMIT 1000)"),
                    {"ns": namespace},
                )
                if result.rowcount == 0:
                    break
                deleted += result.rowcount
        return deleted
