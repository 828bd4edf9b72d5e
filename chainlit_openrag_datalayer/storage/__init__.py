"""Element storage backends behind one small protocol."""

from .base import ElementStorage, PresigningStorage, content_disposition, object_key

__all__ = ["ElementStorage", "PresigningStorage", "content_disposition", "object_key"]
