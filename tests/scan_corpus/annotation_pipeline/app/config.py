from functools import lru_cache

from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    minio_endpoint: str = "minio:9000"
    minio_access_key: str = "minio"
    minio_secret_key: str = "minio123"
    bucket: str = "hq-filestorage-prod"
    openai_api_key: str = ""
    database_url: str = "postgresql+psycopg://app@db/app"


@lru_cache
def get_settings() -> Settings:
    return Settings()
