"""What a method of a known type does: ``(type, method) -> (effect, the type it returns)``
(a Session's ``execute`` is SQL, an Engine's ``connect`` returns a Connection), the SDK clients
whose every method is I/O, and the LLM clients reached through an attribute chain."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ANY_METHOD", "LLM_CALLS", "LLM_TYPES", "METHODS", "NOT_IO"]

_QUERY_SA = ("execute", "scalars", "scalar", "get", "refresh", "merge", "get_one")
_HTTP = ("get", "post", "put", "patch", "delete", "head", "options", "request", "send", "stream")
_REDIS_READ = (
    "get",
    "mget",
    "hget",
    "hgetall",
    "hmget",
    "exists",
    "smembers",
    "sismember",
    "lrange",
    "zrange",
    "zscore",
    "ttl",
    "keys",
    "scan",
    "llen",
    "scard",
    "hexists",
    "getex",
)
_REDIS_WRITE = (
    "set",
    "setex",
    "setnx",
    "mset",
    "hset",
    "hmset",
    "hdel",
    "delete",
    "lpush",
    "rpush",
    "sadd",
    "srem",
    "zadd",
    "incr",
    "incrby",
    "decr",
    "expire",
    "publish",
    "xadd",
    "lpop",
    "rpop",
    "getdel",
)
_MONGO_READ = (
    "find_one",
    "find",
    "count_documents",
    "aggregate",
    "distinct",
    "estimated_document_count",
)
_MONGO_WRITE = (
    "insert_one",
    "insert_many",
    "update_one",
    "update_many",
    "replace_one",
    "delete_one",
    "delete_many",
    "find_one_and_update",
    "find_one_and_replace",
    "find_one_and_delete",
    "bulk_write",
)
_DJANGO_QUERY = (
    "get",
    "first",
    "last",
    "count",
    "exists",
    "aggregate",
    "latest",
    "earliest",
    "in_bulk",
    "values_list",
    "get_or_create",
    "aget",
    "afirst",
    "alast",
    "acount",
    "aexists",
)
_DJANGO_WRITE = (
    "create",
    "update",
    "delete",
    "update_or_create",
    "acreate",
    "aupdate",
    "adelete",
    "bulk_update",
)
_DJANGO_LAZY = (
    "filter",
    "exclude",
    "all",
    "order_by",
    "select_related",
    "prefetch_related",
    "values",
    "annotate",
    "only",
    "defer",
    "distinct",
    "using",
    "none",
)


def _methods() -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """(type, method) -> (effect or None, the type the call returns or None)."""
    m: dict[tuple[str, str], tuple[str | None, str | None]] = {}

    def put(
        types: Sequence[str], names: Sequence[str], effect: str | None, result: str | None = None
    ) -> None:
        for t in types:
            for n in names:
                m[(t, n)] = (effect, result)

    sessions = ("sa.Session", "sa.AsyncSession")
    put(sessions, _QUERY_SA, "sql")
    put(sessions, ("commit",), "commit")
    put(
        sessions,
        ("flush", "bulk_save_objects", "bulk_insert_mappings", "bulk_update_mappings"),
        "write",
    )
    put(("sa.Session",), ("query",), None, "sa.Query")
    put(
        ("sa.Query",),
        (
            "filter",
            "filter_by",
            "join",
            "order_by",
            "options",
            "limit",
            "offset",
            "where",
            "group_by",
            "outerjoin",
            "distinct",
        ),
        None,
        "sa.Query",
    )
    put(
        ("sa.Query",),
        ("first", "all", "one", "one_or_none", "scalar", "count", "get", "exists"),
        "query",
    )
    put(("sa.Query",), ("update", "delete"), "write")
    put(("sa.sessionmaker",), ("__call__", "begin"), None, "sa.Session")
    put(("sa.async_sessionmaker",), ("__call__", "begin"), None, "sa.AsyncSession")
    put(("sa.Engine",), ("connect", "begin"), None, "sa.Connection")
    put(("sa.AsyncEngine",), ("connect", "begin"), None, "sa.AsyncConnection")
    put(("sa.Connection", "sa.AsyncConnection"), ("execute", "scalar", "scalars"), "sql")
    put(("sa.Connection", "sa.AsyncConnection"), ("commit",), "commit")
    put(
        ("sqlite3.Connection", "dbapi.Connection", "adbapi.Connection"),
        ("cursor",),
        None,
        "dbapi.Cursor",
    )
    put(
        ("sqlite3.Connection", "dbapi.Connection", "adbapi.Connection", "dbapi.Cursor"),
        ("execute",),
        "sql",
    )
    put(("sqlite3.Connection", "dbapi.Connection", "adbapi.Connection"), ("commit",), "commit")
    put(("dbapi.Pool", "adbapi.Pool"), ("connection", "getconn"), None, "dbapi.Connection")
    put(("asyncpg.Pool",), ("acquire",), None, "asyncpg.Connection")
    put(("asyncpg.Pool", "asyncpg.Connection"), ("fetch", "fetchrow", "fetchval"), "query")
    put(("asyncpg.Pool", "asyncpg.Connection"), ("execute",), "sql")
    put(("databases.Database",), ("fetch_all", "fetch_one", "fetch_val"), "query")
    put(("databases.Database",), ("execute",), "sql")
    for client, db, coll in (
        ("mongo.Client", "mongo.Database", "mongo.Collection"),
        ("motor.Client", "motor.Database", "motor.Collection"),
    ):
        put(
            (client,),
            ("__getitem__", "__getattr__", "get_database", "get_default_database"),
            None,
            db,
        )
        put((db,), ("__getitem__", "__getattr__", "get_collection"), None, coll)
        put((coll,), _MONGO_READ, "query")
        put((db,), ("command", "list_collection_names"), "query")
        put((coll,), _MONGO_WRITE, "write")
    put(("redis.Redis", "aredis.Redis"), _REDIS_READ, "query")
    put(("redis.Redis", "aredis.Redis"), _REDIS_WRITE, "write")
    put(("httpx.Client", "requests.Session", "urllib3.PoolManager"), _HTTP, "blocking")
    put(("httpx.AsyncClient", "aiohttp.ClientSession"), _HTTP, "io")
    put(("boto3.Session",), ("client", "resource"), None, "boto3.Client")
    put(("aioboto3.Session",), ("client", "resource"), None, "aioboto3.Client")
    put(("django.Manager", "django.QuerySet"), _DJANGO_LAZY, None, "django.QuerySet")
    put(("django.Manager", "django.QuerySet"), _DJANGO_QUERY, "query")
    put(
        ("django.Manager", "django.QuerySet"),
        ("get", "first", "last", "latest", "earliest", "aget", "afirst", "alast"),
        "query",
        "django.Model",
    )
    put(("django.Manager", "django.QuerySet"), _DJANGO_WRITE, "write")
    put(("django.Manager", "django.QuerySet"), ("create", "acreate"), "write", "django.Model")
    put(("django.Model",), ("save", "delete", "asave", "adelete"), "write")
    put(("django.Manager", "django.QuerySet"), ("__iter__",), None, "django.Model")
    # DynamoDB through boto3.resource("dynamodb").Table(name)
    put(("boto3.Client",), ("Table",), None, "dynamo.Table")
    put(("dynamo.Table",), ("get_item", "query", "scan"), "query")
    put(("dynamo.Table",), ("put_item", "update_item", "delete_item"), "write")
    put(("dynamo.Table",), ("batch_writer",), None)
    put(("django.Model",), ("refresh_from_db", "arefresh_from_db"), "query")
    # reading, writing and listing block; a stat or a resolve is a cheap syscall
    put(
        ("Path",),
        (
            "read_text",
            "read_bytes",
            "write_text",
            "write_bytes",
            "open",
            "iterdir",
            "glob",
            "rglob",
            "unlink",
            "rmdir",
        ),
        "blocking",
    )
    put(
        ("Path",),
        (
            "__getattr__",
            "resolve",
            "absolute",
            "with_suffix",
            "with_name",
            "with_stem",
            "joinpath",
            "expanduser",
            "relative_to",
        ),
        None,
        "Path",
    )
    # a DataLoader batches only loads made concurrently: one awaited per item is one batch each
    put(("loader.DataLoader",), ("load",), "io")
    put(("asyncio.Loop",), ("create_task",), "spawn")
    put(("asyncio.Loop",), ("run_in_executor",), None)
    return m


METHODS = _methods()

# Types where any method call is I/O of that kind (SDK clients with many operations); methods
# that are known not to be (close, configuration) are excluded below.
ANY_METHOD: dict[str, str] = {
    "boto3.Client": "blocking",
    "minio.Minio": "blocking",
    "gcs.Client": "blocking",
    "azure.Client": "blocking",
    "es.Client": "blocking",
    "aes.Client": "io",
    "aioboto3.Client": "io",
}
# LLM clients: `client.chat.completions.create(...)` and the like (an attribute chain).
LLM_TYPES = {
    "openai.OpenAI": "blocking",
    "anthropic.Anthropic": "blocking",
    "openai.AsyncOpenAI": "io",
    "anthropic.AsyncAnthropic": "io",
}
LLM_CALLS = frozenset({"create", "parse", "stream", "generate", "embed"})
NOT_IO = frozenset(
    {
        "close",
        "aclose",
        "__enter__",
        "__exit__",
        "__aenter__",
        "__aexit__",
        "get_paginator",
        "get_waiter",
        "meta",
        "exceptions",
        "with_options",
    }
)
