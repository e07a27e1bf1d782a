from functools import lru_cache

from minio import Minio
from openai import OpenAI

from app.config import Settings, get_settings


class MinioStorageProvider:
    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.bucket
        self.client = Minio(
            settings.minio_endpoint,
            access_key=settings.minio_access_key,
            secret_key=settings.minio_secret_key,
            secure=True,
        )

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(self.bucket, key).read()


def create_storage_provider(settings: Settings) -> MinioStorageProvider:
    return MinioStorageProvider(settings)


def create_classification_provider(settings: Settings) -> OpenAI:
    return OpenAI(api_key=settings.openai_api_key)


@lru_cache(maxsize=None)
def get_storage_provider() -> MinioStorageProvider:
    return create_storage_provider(get_settings())


_provider_cache = {}  # expect: SLP501


def get_cached_provider(provider_type: str, settings_instance: Settings):
    cache_key = f"{provider_type}_{id(settings_instance)}"
    if cache_key not in _provider_cache:
        if provider_type == "storage":
            _provider_cache[cache_key] = create_storage_provider(settings_instance)
        else:
            _provider_cache[cache_key] = create_classification_provider(settings_instance)
    return _provider_cache[cache_key]
