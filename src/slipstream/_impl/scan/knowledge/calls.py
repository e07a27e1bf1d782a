"""What a plain function or decorator does: the functions that block, spawn or do invariant
work, the calls and decorators that move work to a thread, memoise it, or make a function a
handler or a per-item callback, and the words that say what a SQL statement is."""

from __future__ import annotations

__all__ = [
    "FUNCTIONS",
    "HANDLER_DECORATORS",
    "HANDLER_DECORATOR_ATTRS",
    "MEMOISERS",
    "OFFLOADERS",
    "OFFLOAD_DECORATORS",
    "PER_ITEM_METHODS",
    "PER_ITEM_RUNNERS",
    "SA_WRITE_CONSTRUCTS",
    "SQL_DDL_WORDS",
    "SQL_READ_WORDS",
    "SQL_WRITE_WORDS",
]

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
