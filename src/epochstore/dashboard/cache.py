"""The dashboard's bounded caches: :class:`LRUCache` (defined in :mod:`epochstore._lru`, which
:mod:`epochstore.viz` shares)."""

from epochstore._lru import LRUCache

__all__ = ["LRUCache"]
