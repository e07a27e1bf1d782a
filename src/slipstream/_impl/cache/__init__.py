"""cache: ``Cache`` and ``@cached`` with single flight, over memory, SQLite or Redis stores.

The protocols a store and a serializer implement are exported here (``Store``, ``Serializer``);
``Cache`` and ``cached`` live in ``cache.cache`` and ``cache.decorator``.
"""

from .serializers import Serializer as Serializer
from .store import Store as Store

__all__ = ["Serializer", "Store"]
