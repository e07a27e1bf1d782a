"""The reference annotation workload: assets x JSON schemas, classified by an LLM endpoint.

Shared by both implementations (``naive.py``, ``fast.py``), the emulator and the demo:

- ``make_assets`` writes short documents into a local object store (a directory, one file per
  asset: seed 000 read its assets from MinIO);
- ``make_schemas`` returns JSON schemas of the kind seed 000 applied (labels with enums,
  numbers, flags, lists);
- ``answer_for`` is what the emulator answers: a deterministic function of the document and the
  schema, valid against the schema, so every stored result can be checked;
- ``compile_schema`` turns a JSON schema into a pydantic model (what seed 000's
  ``create_pydantic_model_from_json_schema`` did), raising ``InvalidSchema`` for a schema that
  is not one;
- ``ObjectStore`` is the storage provider; creating it costs a handshake, as MinIO's did
  (seed 000: 200-500 ms per creation); ``S3Store`` reads the same assets from an S3-compatible
  bucket (MinIO, AWS) when the location is an ``s3://bucket/prefix?endpoint=URL`` URL;
- ``Results`` holds the results database, SQLite by default, PostgreSQL by URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

GARBAGE = "[[garbage]]"  # a document containing this gets an answer that does not validate

TOPICS = ["finance", "biology", "law", "sports", "music", "medicine", "travel", "energy"]


def make_assets(folder: Path, n: int, *, garbage: int = 0) -> list[str]:
    """Write ``n`` documents as ``folder/asset-NNNNN.txt``; the first ``garbage`` of them get
    answers that never validate. Returns the asset ids."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n):
        asset_id = f"asset-{i:05d}"
        topic = TOPICS[i % len(TOPICS)]
        text = (
            f"Document {i} about {topic}. "
            + " ".join(f"{topic}-term-{(i * 7 + j) % 97}" for j in range(40))
            + (f" {GARBAGE}" if i < garbage else "")
        )
        (folder / f"{asset_id}.txt").write_text(text)
        ids.append(asset_id)
    return ids


def make_schemas(m: int) -> list[dict[str, Any]]:
    """``m`` JSON schemas (cycling through a few shapes), each with an ``$id``."""
    shapes: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {
                "topic": {"type": "string", "enum": TOPICS},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "required": ["topic", "confidence"],
        },
        {
            "type": "object",
            "properties": {
                "sentiment": {"type": "string", "enum": ["negative", "neutral", "positive"]},
                "is_technical": {"type": "boolean"},
            },
            "required": ["sentiment", "is_technical"],
        },
        {
            "type": "object",
            "properties": {
                "keywords": {"type": "array", "items": {"type": "string"}},
                "reading_level": {"type": "integer", "minimum": 1, "maximum": 12},
            },
            "required": ["keywords", "reading_level"],
        },
    ]
    return [{"$id": f"schema-{j}", **shapes[j % len(shapes)]} for j in range(m)]


def _h(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest())


def answer_for(document: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The answer the emulator gives: deterministic, and valid against ``schema``."""
    out: dict[str, Any] = {}
    for name, spec in schema.get("properties", {}).items():
        h = _h(document, schema.get("$id", ""), name)
        kind = spec.get("type")
        if "enum" in spec:
            out[name] = spec["enum"][h % len(spec["enum"])]
        elif kind == "number":
            lo, hi = spec.get("minimum", 0), spec.get("maximum", 1)
            out[name] = round(lo + (hi - lo) * (h % 1001) / 1000, 3)
        elif kind == "integer":
            lo, hi = spec.get("minimum", 0), spec.get("maximum", 100)
            out[name] = lo + h % (hi - lo + 1)
        elif kind == "boolean":
            out[name] = bool(h % 2)
        elif kind == "array":
            words = document.split()
            out[name] = [words[(h >> k) % len(words)] for k in range(3)] if words else []
        else:
            out[name] = f"{name}-{h % 1000}"
    if GARBAGE in document:
        out.pop(next(iter(schema.get("required", [])), ""), None)  # drop a required field
    return out


class InvalidSchema(ValueError):
    """A schema that cannot be compiled: its items fail with this, the others proceed."""


_TYPES: dict[str, Any] = {"string": str, "number": float, "integer": int, "boolean": bool}


def compile_schema(schema: Any) -> Any:
    """A pydantic model for ``schema`` (an object schema of scalars, enums and string lists)."""
    from typing import Literal

    from pydantic import ConfigDict, Field, create_model

    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise InvalidSchema(f"schema {_name(schema)}: the top level must be type 'object'")
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        raise InvalidSchema(f"schema {_name(schema)}: 'properties' must be a non-empty object")
    required = schema.get("required", [])
    if not isinstance(required, list) or not set(required) <= set(props):
        raise InvalidSchema(f"schema {_name(schema)}: 'required' names unknown properties")
    fields: dict[str, Any] = {}
    for name, spec in props.items():
        if not isinstance(spec, dict):
            raise InvalidSchema(f"schema {_name(schema)}: property {name!r} is not an object")
        if "enum" in spec:
            if not isinstance(spec["enum"], list) or not spec["enum"]:
                raise InvalidSchema(f"schema {_name(schema)}: {name!r} has an empty enum")
            annotation: Any = Literal[tuple(spec["enum"])]
        elif spec.get("type") == "array":
            item_type = spec.get("items", {}).get("type")
            if item_type not in _TYPES:
                raise InvalidSchema(f"schema {_name(schema)}: {name!r} has items of {item_type!r}")
            annotation = list[_TYPES[item_type]]  # type: ignore[misc]
        elif spec.get("type") in _TYPES:
            annotation = _TYPES[spec["type"]]
        else:
            raise InvalidSchema(
                f"schema {_name(schema)}: property {name!r} has unknown type {spec.get('type')!r}"
            )
        bounds = {k: spec[k] for k in ("minimum", "maximum") if k in spec}
        field = Field(
            ...,
            ge=bounds.get("minimum"),
            le=bounds.get("maximum"),
        )
        if name not in required:
            annotation = annotation | None
            field = Field(None, ge=bounds.get("minimum"), le=bounds.get("maximum"))
        fields[name] = (annotation, field)
    return create_model(
        f"Answer_{_name(schema)}".replace("-", "_"),
        __config__=ConfigDict(extra="forbid", strict=True),
        **fields,
    )


def _name(schema: Any) -> str:
    return str(schema.get("$id", "?")) if isinstance(schema, dict) else "?"


def prompt(document: str, schema: dict[str, Any], model: str = "annotator") -> dict[str, Any]:
    """The chat-completions request body for one asset x schema (``model``: the name the
    endpoint serves; the emulator takes any)."""
    return {
        "model": model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "Annotate the document. Answer with JSON only."},
            {"role": "user", "content": document},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": _name(schema), "schema": schema, "strict": True},
        },
    }


class AssetMissing(LookupError):
    """The object store has no such asset."""


class ObjectStore:
    """A directory standing in for an object-store bucket. ``connect`` costs ``handshake_s``
    (DNS, TLS, authentication, bucket check: seed 000 measured 200-500 ms per MinIO client)."""

    creations = 0  # counted across instances: the demo reports it

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    async def connect(cls, root: Path, handshake_s: float) -> ObjectStore:
        await asyncio.sleep(handshake_s)
        if not await asyncio.to_thread(root.is_dir):
            raise FileNotFoundError(f"the object store bucket {str(root)!r} does not exist")
        cls.creations += 1
        return cls(root)

    def read(self, asset_id: str) -> str:
        try:
            return (self.root / f"{asset_id}.txt").read_text()
        except FileNotFoundError:
            raise AssetMissing(f"asset {asset_id!r} is not in the store") from None

    async def get(self, asset_id: str) -> str:
        return await asyncio.to_thread(self.read, asset_id)

    async def aclose(self) -> None:
        return None


class S3Store:
    """Assets in an S3-compatible bucket: ``s3://bucket/prefix?endpoint=http://host:9000``
    (the endpoint may also come from ``AWS_ENDPOINT_URL``; credentials from the usual AWS
    variables). boto3's client is sync: calls run in worker threads. Needs ``boto3``."""

    creations = 0

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    @staticmethod
    def parse(url: str) -> tuple[str, str, str | None]:
        parts = urlsplit(url)
        prefix = parts.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        endpoint = parse_qs(parts.query).get("endpoint", [None])[0]
        return parts.netloc, prefix, endpoint or os.environ.get("AWS_ENDPOINT_URL")

    @staticmethod
    def client_for(endpoint: str | None) -> Any:
        import boto3

        region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        return boto3.client("s3", endpoint_url=endpoint, region_name=region)

    @classmethod
    async def connect(cls, url: str) -> S3Store:
        """Create the client and check the bucket (the real handshake: DNS, TLS, auth)."""
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, prefix, endpoint = cls.parse(url)

        def make() -> Any:
            client = cls.client_for(endpoint)
            client.head_bucket(Bucket=bucket)
            return client

        try:
            client = await asyncio.to_thread(make)
        except (BotoCoreError, ClientError) as exc:
            raise FileNotFoundError(f"the S3 bucket {bucket!r} cannot be read: {exc}") from exc
        cls.creations += 1
        return cls(client, bucket, prefix)

    def read(self, asset_id: str) -> str:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}{asset_id}.txt")
        except self.client.exceptions.NoSuchKey:
            raise AssetMissing(f"asset {asset_id!r} is not in the bucket") from None
        return str(body["Body"].read().decode())

    async def get(self, asset_id: str) -> str:
        return await asyncio.to_thread(self.read, asset_id)

    def upload(self, folder: Path) -> int:
        """Copy every ``*.txt`` of ``folder`` into the bucket (for the demo); returns how many."""
        n = 0
        for path in sorted(folder.glob("*.txt")):
            self.client.put_object(
                Bucket=self.bucket, Key=f"{self.prefix}{path.name}", Body=path.read_bytes()
            )
            n += 1
        return n

    async def aclose(self) -> None:
        self.client.close()


async def fill_bucket(url: str, folder: Path) -> int:
    """Create the bucket of ``url`` if missing and upload the assets of ``folder`` into it."""
    bucket, _, endpoint = S3Store.parse(url)

    def create() -> None:
        client = S3Store.client_for(endpoint)
        try:
            client.head_bucket(Bucket=bucket)
        except client.exceptions.ClientError:
            client.create_bucket(Bucket=bucket)
        client.close()

    await asyncio.to_thread(create)
    store = await S3Store.connect(url)
    try:
        return await asyncio.to_thread(store.upload, folder)
    finally:
        await store.aclose()


async def connect_store(location: str | Path, handshake_s: float) -> ObjectStore | S3Store:
    """The storage provider for ``location``: a directory, or an ``s3://`` URL."""
    if str(location).startswith("s3://"):
        return await S3Store.connect(str(location))
    return await ObjectStore.connect(Path(location), handshake_s)


@dataclass(frozen=True)
class Result:
    key: str
    asset_id: str
    schema_id: str
    label: str  # the JSON answer

    def row(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "asset_id": self.asset_id,
            "schema_id": self.schema_id,
            "label": self.label,
        }


COLUMNS = ["key", "asset_id", "schema_id", "label"]
DDL = (
    "CREATE TABLE IF NOT EXISTS annotations "
    "(key TEXT PRIMARY KEY, asset_id TEXT, schema_id TEXT, label TEXT)"
)


def is_postgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


async def prepare_db(db: str, *, reset: bool = False) -> None:
    """Create the results table (and empty it with ``reset``); a bad URL fails here, early."""
    if is_postgres(db):
        import asyncpg

        try:
            conn = await asyncpg.connect(db, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConnectionError(f"cannot reach the results database {db!r}: {exc}") from exc
        try:
            await conn.execute(DDL)
            if reset:
                await conn.execute("TRUNCATE annotations")
        finally:
            await conn.close()
        return
    await asyncio.to_thread(_prepare_sqlite, Path(db), reset)


def _prepare_sqlite(path: Path, reset: bool) -> None:
    if not path.parent.is_dir():
        raise ConnectionError(f"the results database's folder {str(path.parent)!r} is missing")
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(DDL)
        if reset:
            conn.execute("DELETE FROM annotations")
        conn.commit()
    finally:
        conn.close()


async def stored(db: str) -> dict[str, dict[str, Any]]:
    """Every stored result, by key (for checks)."""
    if is_postgres(db):
        import asyncpg

        conn = await asyncpg.connect(db)
        try:
            rows = await conn.fetch("SELECT key, label FROM annotations")
        finally:
            await conn.close()
        return {r["key"]: json.loads(r["label"]) for r in rows}
    conn2 = sqlite3.connect(db)
    try:
        return {k: json.loads(v) for k, v in conn2.execute("SELECT key, label FROM annotations")}
    finally:
        conn2.close()


def expected(
    assets_dir: Path, asset_ids: list[str], schemas: list[dict[str, Any]]
) -> dict[str, Any]:
    """What a correct run stores: ``answer_for`` of every valid asset x schema pair."""
    out = {}
    for asset_id in asset_ids:
        path = assets_dir / f"{asset_id}.txt"
        if not path.exists():
            continue
        document = path.read_text()
        if GARBAGE in document:
            continue
        for schema in schemas:
            try:
                compile_schema(schema)
            except InvalidSchema:
                continue
            out[f"{asset_id}:{schema['$id']}"] = answer_for(document, schema)
    return out
