"""Element storage backends behind one small protocol."""

from .base import ElementStorage, content_disposition, object_key

__all__ = ["ElementStorage", "content_disposition", "object_key"]
