import os

PG_DSN = os.environ.get("PG_DSN", "postgresql://billing@localhost/billing")
REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
BUCKET = os.environ.get("THUMB_BUCKET", "thumbs")
