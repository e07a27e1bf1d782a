"""What the scanner knows about other people's APIs, as data: which calls build an expensive
client, which run a query, write, commit or block, and what type each call returns.

Everything is keyed by what an import resolves to (``sqlalchemy.orm.Session``), never by a bare
method name: ``x.get(...)`` is a query only when ``x`` is known to be, say, a Redis client.
Users extend the table in ``[tool.slipstream.scan.knowledge]`` (see :func:`extended`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Knowledge", "extended"]


# -- types -------------------------------------------------------------------------------------
# A type is a short name. CONSTRUCTORS: a callable's dotted name -> the type its call returns.
_SA = "sqlalchemy"
CONSTRUCTORS: dict[str, str] = {
    # SQLAlchemy
    f"{_SA}.create_engine": "sa.Engine",
    f"{_SA}.engine.create_engine": "sa.Engine",
    f"{_SA}.ext.asyncio.create_async_engine": "sa.AsyncEngine",
    f"{_SA}.orm.Session": "sa.Session",
    f"{_SA}.orm.session.Session": "sa.Session",
    f"{_SA}.orm.sessionmaker": "sa.sessionmaker",
    f"{_SA}.orm.scoped_session": "sa.sessionmaker",
    f"{_SA}.ext.asyncio.AsyncSession": "sa.AsyncSession",
    f"{_SA}.ext.asyncio.async_sessionmaker": "sa.async_sessionmaker",
    "sqlmodel.Session": "sa.Session",
    "sqlmodel.create_engine": "sa.Engine",
    # DB-API drivers
    "sqlite3.connect": "sqlite3.Connection",
    "psycopg2.connect": "dbapi.Connection",
    "psycopg.connect": "dbapi.Connection",
    "psycopg.Connection.connect": "dbapi.Connection",
    "pymysql.connect": "dbapi.Connection",
    "MySQLdb.connect": "dbapi.Connection",
    "mysql.connector.connect": "dbapi.Connection",
    "psycopg.AsyncConnection.connect": "adbapi.Connection",
    "aiosqlite.connect": "adbapi.Connection",
    "asyncpg.connect": "asyncpg.Connection",
    "asyncpg.create_pool": "asyncpg.Pool",
    "psycopg_pool.ConnectionPool": "dbapi.Pool",
    "psycopg_pool.AsyncConnectionPool": "adbapi.Pool",
    "psycopg2.pool.SimpleConnectionPool": "dbapi.Pool",
    "psycopg2.pool.ThreadedConnectionPool": "dbapi.Pool",
    "databases.Database": "databases.Database",
    # document / key-value stores
    "pymongo.MongoClient": "mongo.Client",
    "pymongo.mongo_client.MongoClient": "mongo.Client",
    "motor.motor_asyncio.AsyncIOMotorClient": "motor.Client",
    "motor.AsyncIOMotorClient": "motor.Client",
    "pymongo.AsyncMongoClient": "motor.Client",
    "redis.Redis": "redis.Redis",
    "redis.StrictRedis": "redis.Redis",
    "redis.from_url": "redis.Redis",
    "redis.Redis.from_url": "redis.Redis",
    "redis.client.Redis": "redis.Redis",
    "redis.asyncio.Redis": "aredis.Redis",
    "redis.asyncio.from_url": "aredis.Redis",
    "redis.asyncio.Redis.from_url": "aredis.Redis",
    "aioredis.from_url": "aredis.Redis",
    "aioredis.Redis": "aredis.Redis",
    "elasticsearch.Elasticsearch": "es.Client",
    "elasticsearch.AsyncElasticsearch": "aes.Client",
    # HTTP
    "httpx.Client": "httpx.Client",
    "httpx.AsyncClient": "httpx.AsyncClient",
    "requests.Session": "requests.Session",
    "requests.session": "requests.Session",
    "aiohttp.ClientSession": "aiohttp.ClientSession",
    "urllib3.PoolManager": "urllib3.PoolManager",
    # object storage, LLMs, cloud SDKs
    "boto3.client": "boto3.Client",
    "boto3.resource": "boto3.Client",
    "boto3.session.Session": "boto3.Session",
    "boto3.Session": "boto3.Session",
    "botocore.session.get_session": "boto3.Session",
    "aioboto3.Session": "aioboto3.Session",
    "minio.Minio": "minio.Minio",
    "google.cloud.storage.Client": "gcs.Client",
    "azure.storage.blob.BlobServiceClient": "azure.Client",
    "azure.storage.blob.BlobServiceClient.from_connection_string": "azure.Client",
    "openai.OpenAI": "openai.OpenAI",
    "openai.AzureOpenAI": "openai.OpenAI",
    "openai.AsyncOpenAI": "openai.AsyncOpenAI",
    "openai.AsyncAzureOpenAI": "openai.AsyncOpenAI",
    "anthropic.Anthropic": "anthropic.Anthropic",
    "anthropic.AsyncAnthropic": "anthropic.AsyncAnthropic",
    "pathlib.Path": "Path",
    "pathlib.PurePath": "PurePath",
    "asyncio.get_running_loop": "asyncio.Loop",
    "asyncio.get_event_loop": "asyncio.Loop",
    "asyncio.new_event_loop": "asyncio.Loop",
    "asyncio.TaskGroup": "asyncio.TaskGroup",
    "asyncio.Lock": "Lock",
    "asyncio.Semaphore": "Lock",
    "asyncio.BoundedSemaphore": "Lock",
    "threading.Lock": "Lock",
    "threading.RLock": "Lock",
    "anyio.Lock": "Lock",
    "anyio.Semaphore": "Lock",
    "anyio.create_task_group": "asyncio.TaskGroup",
    "trio.open_nursery": "asyncio.TaskGroup",
}

# Annotation names (what an annotation resolves to) -> type.
ANNOTATIONS: dict[str, str] = {
    f"{_SA}.orm.Session": "sa.Session",
    f"{_SA}.orm.session.Session": "sa.Session",
    "sqlmodel.Session": "sa.Session",
    f"{_SA}.ext.asyncio.AsyncSession": "sa.AsyncSession",
    f"{_SA}.engine.Engine": "sa.Engine",
    f"{_SA}.Engine": "sa.Engine",
    f"{_SA}.engine.Connection": "sa.Connection",
    f"{_SA}.Connection": "sa.Connection",
    f"{_SA}.ext.asyncio.AsyncEngine": "sa.AsyncEngine",
    f"{_SA}.ext.asyncio.AsyncConnection": "sa.AsyncConnection",
    "sqlite3.Connection": "sqlite3.Connection",
    "sqlite3.Cursor": "dbapi.Cursor",
    "psycopg.Connection": "dbapi.Connection",
    "psycopg.AsyncConnection": "adbapi.Connection",
    "psycopg2.extensions.connection": "dbapi.Connection",
    "asyncpg.Connection": "asyncpg.Connection",
    "asyncpg.connection.Connection": "asyncpg.Connection",
    "asyncpg.Pool": "asyncpg.Pool",
    "asyncpg.pool.Pool": "asyncpg.Pool",
    "pymongo.MongoClient": "mongo.Client",
    "pymongo.database.Database": "mongo.Database",
    "pymongo.collection.Collection": "mongo.Collection",
    "motor.motor_asyncio.AsyncIOMotorClient": "motor.Client",
    "motor.motor_asyncio.AsyncIOMotorDatabase": "motor.Database",
    "motor.motor_asyncio.AsyncIOMotorCollection": "motor.Collection",
    "redis.Redis": "redis.Redis",
    "redis.asyncio.Redis": "aredis.Redis",
    "httpx.Client": "httpx.Client",
    "httpx.AsyncClient": "httpx.AsyncClient",
    "requests.Session": "requests.Session",
    "aiohttp.ClientSession": "aiohttp.ClientSession",
    "openai.OpenAI": "openai.OpenAI",
    "openai.AsyncOpenAI": "openai.AsyncOpenAI",
    "anthropic.Anthropic": "anthropic.Anthropic",
    "anthropic.AsyncAnthropic": "anthropic.AsyncAnthropic",
    "minio.Minio": "minio.Minio",
    "pathlib.Path": "Path",
    "asyncio.AbstractEventLoop": "asyncio.Loop",
    "asyncio.TaskGroup": "asyncio.TaskGroup",
    "asyncio.Lock": "Lock",
    "asyncio.Semaphore": "Lock",
    "databases.Database": "databases.Database",
}

# Types whose construction is expensive (a pool, TLS, credentials, a model's client): SLP101/102.
CLIENT_TYPES = frozenset(
    {
        "sa.Engine",
        "sa.AsyncEngine",
        "dbapi.Connection",
        "adbapi.Connection",
        "asyncpg.Connection",
        "asyncpg.Pool",
        "dbapi.Pool",
        "adbapi.Pool",
        "databases.Database",
        "mongo.Client",
        "motor.Client",
        "redis.Redis",
        "aredis.Redis",
        "es.Client",
        "aes.Client",
        "httpx.Client",
        "httpx.AsyncClient",
        "requests.Session",
        "aiohttp.ClientSession",
        "urllib3.PoolManager",
        "boto3.Client",
        "boto3.Session",
        "aioboto3.Session",
        "minio.Minio",
        "gcs.Client",
        "azure.Client",
        "openai.OpenAI",
        "openai.AsyncOpenAI",
        "anthropic.Anthropic",
        "anthropic.AsyncAnthropic",
    }
)

# Types whose calls are synchronous I/O (blocking on the event loop).
SYNC_TYPES = frozenset(
    {
        "sa.Engine",
        "sa.Session",
        "sa.Connection",
        "sa.Query",
        "sqlite3.Connection",
        "dbapi.Connection",
        "dbapi.Cursor",
        "dbapi.Pool",
        "mongo.Client",
        "mongo.Database",
        "mongo.Collection",
        "mongo.Cursor",
        "redis.Redis",
        "es.Client",
        "httpx.Client",
        "requests.Session",
        "urllib3.PoolManager",
        "boto3.Client",
        "minio.Minio",
        "gcs.Client",
        "azure.Client",
        "openai.OpenAI",
        "anthropic.Anthropic",
        "django.Manager",
        "django.QuerySet",
        "django.Model",
        "dynamo.Table",
        "Path",
    }
)

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

# Plain functions: dotted name -> effect.
FUNCTIONS: dict[str, str] = {
    "time.sleep": "blocking",
    "builtins.open": "blocking",
    "builtins.input": "blocking",
    "io.open": "blocking",
    "os.walk": "blocking",
    "os.listdir": "blocking",
    "os.scandir": "blocking",
    "os.remove": "blocking",
    "os.unlink": "blocking",
    "os.rename": "blocking",
    "os.replace": "blocking",
    "os.makedirs": "blocking",
    "os.rmdir": "blocking",
    "os.system": "blocking",
    "os.fsync": "blocking",
    "os.read": "blocking",
    "os.write": "blocking",
    "glob.glob": "blocking",
    "glob.iglob": "blocking",
    "shutil.copy": "blocking",
    "shutil.copy2": "blocking",
    "shutil.copyfile": "blocking",
    "shutil.copytree": "blocking",
    "shutil.rmtree": "blocking",
    "shutil.move": "blocking",
    "shutil.make_archive": "blocking",
    "shutil.unpack_archive": "blocking",
    "shutil.disk_usage": "blocking",
    "zipfile.ZipFile": "blocking",
    "tarfile.open": "blocking",
    "gzip.open": "blocking",
    "subprocess.run": "blocking",
    "subprocess.call": "blocking",
    "subprocess.check_call": "blocking",
    "subprocess.check_output": "blocking",
    "subprocess.getoutput": "blocking",
    "subprocess.getstatusoutput": "blocking",
    "requests.get": "blocking",
    "requests.post": "blocking",
    "requests.put": "blocking",
    "requests.patch": "blocking",
    "requests.delete": "blocking",
    "requests.head": "blocking",
    "requests.request": "blocking",
    "httpx.get": "blocking",
    "httpx.post": "blocking",
    "httpx.put": "blocking",
    "httpx.patch": "blocking",
    "httpx.delete": "blocking",
    "httpx.request": "blocking",
    "urllib.request.urlopen": "blocking",
    "urllib.request.urlretrieve": "blocking",
    "socket.create_connection": "blocking",
    "socket.getaddrinfo": "blocking",
    "socket.gethostbyname": "blocking",
    "hashlib.file_digest": "blocking",
    "bcrypt.hashpw": "blocking",
    "bcrypt.checkpw": "blocking",
    "pandas.read_csv": "blocking",
    "pandas.read_parquet": "blocking",
    "pandas.read_excel": "blocking",
    "pandas.read_json": "blocking",
    "pandas.read_sql": "blocking",
    "PIL.Image.open": "blocking",
    # a config loaded from a constant path in a loop is invariant work; per-item JSON is not
    # (its argument changes in the loop); the file read itself is open()'s
    "json.load": "invariant",
    "json.loads": "invariant",
    "pickle.load": "blocking",
    "sqlite3.connect": "blocking",
    "psycopg2.connect": "blocking",
    "psycopg.connect": "blocking",
    "pymysql.connect": "blocking",
    "asyncio.create_task": "spawn",
    "asyncio.ensure_future": "spawn",
    # known-expensive work whose result depends only on its arguments (SLP103)
    # not re.compile: `re` caches compiled patterns (a cached compile is ~150 ns)
    "pydantic.create_model": "invariant",
    "pydantic.TypeAdapter": "invariant",
    "jsonschema.Draft7Validator": "invariant",
    "jsonschema.Draft4Validator": "invariant",
    "jsonschema.Draft6Validator": "invariant",
    "jsonschema.Draft201909Validator": "invariant",
    "jsonschema.Draft202012Validator": "invariant",
    "jsonschema.validators.validator_for": "invariant",
    "fastjsonschema.compile": "invariant",
    "yaml.safe_load": "invariant",
    "yaml.load": "invariant",
    "yaml.full_load": "invariant",
    "tomllib.load": "invariant",
    "tomllib.loads": "invariant",
    "toml.load": "invariant",
    "jinja2.Environment": "invariant",
    "jinja2.Template": "invariant",
    "tiktoken.get_encoding": "invariant",
    "tiktoken.encoding_for_model": "invariant",
    "transformers.AutoTokenizer.from_pretrained": "invariant",
    "transformers.AutoModel.from_pretrained": "invariant",
    "configparser.ConfigParser": "invariant",
    "dotenv.load_dotenv": "invariant",
    "dotenv.dotenv_values": "invariant",
}

# Base classes: a project class deriving from one of these gets that type's behaviour.
BASES: dict[str, str] = {
    "django.db.models.Model": "django.Model",
    "django.db.models.base.Model": "django.Model",
    "pydantic_settings.BaseSettings": "settings",
    "pydantic.BaseSettings": "settings",
}

# Calls that run a function they are *given* in a thread or process (it is passed, not called).
OFFLOADERS = frozenset(
    {
        "asyncio.to_thread",
        "starlette.concurrency.run_in_threadpool",
        "fastapi.concurrency.run_in_threadpool",
        "anyio.to_thread.run_sync",
        "slipstream.offload",
        "slipstream.fix.offload",
        "asgiref.sync.sync_to_async",
        "concurrent.futures.ThreadPoolExecutor.submit",
    }
)

# Decorators that make a sync function run in a worker thread when called from async code.
OFFLOAD_DECORATORS = frozenset(
    {
        "slipstream.nonblocking",
        "slipstream.fix.nonblocking",
        "asgiref.sync.sync_to_async",
        "asyncer.asyncify",
        "aiofiles.os.wrap",
    }
)

# Decorators that memoise a function (it runs once per key: not a cost per call).
MEMOISERS = frozenset(
    {
        "functools.lru_cache",
        "functools.cache",
        "functools.cached_property",
        "async_lru.alru_cache",
        "slipstream.cached",
        "cachetools.cached",
        "aiocache.cached",
        "cashews.cache",
        "builtins.property",
    }
)

# Decorators and registrations that make a function a request handler or a task (SLP102).
HANDLER_DECORATOR_ATTRS = frozenset(
    {
        "get",
        "post",
        "put",
        "patch",
        "delete",
        "route",
        "api_route",
        "websocket",
        "head",
        "options",
        "view",
        "task",
        "shared_task",
        "remote",
        "middleware",
        "on_message",
    }
)
HANDLER_DECORATORS = frozenset(
    {
        "celery.shared_task",
        "dramatiq.actor",
        "ray.remote",
        "dask.delayed",
        "rest_framework.decorators.api_view",
        "django.views.decorators.http.require_http_methods",
        "django.views.decorators.http.require_GET",
        "django.views.decorators.http.require_POST",
        "functions_framework.http",
    }
)
# Calls that run a function they are given once per item (the function is "called often").
PER_ITEM_RUNNERS = frozenset(
    {
        "slipstream.map",
        "slipstream.stream",
        "slipstream.Stage",
        "slipstream.fix.map",
        "slipstream.fix.Stage",
    }
)
PER_ITEM_METHODS = frozenset(
    {"map", "imap", "imap_unordered", "submit", "starmap", "apply_async", "map_async"}
)

SQL_WRITE_WORDS = frozenset(
    {
        "insert",
        "update",
        "delete",
        "upsert",
        "merge",
        "replace",
    }
)
# schema changes and session statements: run once by a migration or a setup, not per item
SQL_DDL_WORDS = frozenset(
    {
        "create",
        "alter",
        "drop",
        "truncate",
        "pragma",
        "begin",
        "commit",
        "rollback",
        "set",
        "vacuum",
        "analyze",
        "savepoint",
        "release",
        "grant",
        "comment",
        "lock",
    }
)
SQL_READ_WORDS = frozenset({"select", "with", "show", "explain", "values", "table"})
SA_WRITE_CONSTRUCTS = frozenset(
    {
        "sqlalchemy.insert",
        "sqlalchemy.update",
        "sqlalchemy.delete",
        "sqlalchemy.dialects.postgresql.insert",
        "sqlalchemy.dialects.sqlite.insert",
        "sqlalchemy.dialects.mysql.insert",
        "sqlmodel.insert",
        "sqlmodel.update",
        "sqlmodel.delete",
    }
)


@dataclass(frozen=True)
class Knowledge:
    """The table the scan uses: the built-in entries plus a user's additions."""

    functions: Mapping[str, str] = field(default_factory=lambda: FUNCTIONS)
    constructors: Mapping[str, str] = field(default_factory=lambda: CONSTRUCTORS)


USER_KINDS = ("query", "write", "commit", "client", "blocking", "invariant", "io")


def extended(extra: Mapping[str, Sequence[str]] | None) -> Knowledge:
    """The built-in table plus ``extra``: ``{"query": ["pkg.mod.fn", ...], ...}`` (kinds:
    query, write, commit, client, blocking, invariant, io). A ``client`` entry marks a
    constructor; the others mark functions or methods (``pkg.mod.Class.method``)."""
    if not extra:
        return Knowledge()
    if not isinstance(extra, Mapping):
        raise TypeError(f"'knowledge' must be a mapping of kind -> names, got {extra!r}")
    functions = dict(FUNCTIONS)
    constructors = dict(CONSTRUCTORS)
    for kind, names in extra.items():
        if kind not in USER_KINDS:
            raise ValueError(
                f"'knowledge' has an unknown kind {kind!r}; known: {', '.join(USER_KINDS)}"
            )
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"'knowledge.{kind}' must be a list of dotted names, got {names!r}")
        for name in names:
            if kind == "client":
                constructors[name] = f"user:{name}"
            else:
                functions[name] = kind
    return Knowledge(functions=functions, constructors=constructors)
