"""Module-level state of every kind the architecture test must find (never imported)."""

import functools
import threading

CONSTANT = {"a": 1}  # filled where it is written: a table, not state
_filled: dict[str, int] = {}
_seen = set()
_slots = threading.BoundedSemaphore(4)
_rebound = None


@functools.lru_cache(maxsize=8)
def _memo(key: str) -> str:
    return key


def _plain(key: str) -> str:
    return key


_wrapped = functools.lru_cache(maxsize=8)(_plain)


def rebind() -> None:
    global _rebound
    _rebound = object()
