"""Element storage backends behind one small protocol."""

from __future__ import annotations

from ..config import Settings
from .base import ElementStorage, PresigningStorage, object_key, thread_prefix
from .local import LocalStorage
from .s3 import S3Storage

__all__ = [
    "ElementStorage",
    "LocalStorage",
    "PresigningStorage",
    "S3Storage",
    "describe",
    "object_key",
    "storage_for",
    "thread_prefix",
]


def storage_for(settings: Settings) -> ElementStorage:
    """S3 when a bucket is configured, else the local folder."""
    if settings.s3 is None:
        return LocalStorage(settings.local_storage_dir)
    return S3Storage(settings.s3, settings.url_expiry_seconds)


def describe(storage: ElementStorage) -> str:
    """For the start-up log line."""
    if isinstance(storage, S3Storage):
        return f"S3 bucket {storage.bucket}"
    if isinstance(storage, LocalStorage):
        return f"local folder {storage.root}"
    return type(storage).__name__
