import hashlib
import hmac
from pathlib import Path

KEYS_DIR = Path("/etc/webhooks/keys")


def read_key(tenant: str) -> bytes:
    return (KEYS_DIR / f"{tenant}.key").read_bytes()


def sign(tenant: str, body: bytes) -> str:
    return hmac.new(read_key(tenant), body, hashlib.sha256).hexdigest()


def digest_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
