"""Helpers for tests that read what a page keeps on the device (IndexedDB, caches,
notifications): all of it is asynchronous, and ``wait_for_function`` does not await a promise
(a pending promise is a truthy object), so ``wait_async`` polls ``evaluate``, which does."""

from __future__ import annotations

import time
from typing import Any

# Reads one IndexedDB store of the cockpit's database (as the page's own code wrote it).
READ_STORE = """([store, key]) => new Promise((resolve, reject) => {
  const open = indexedDB.open("patchbay");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const req = key === null ? open.result.transaction(store).objectStore(store).getAll()
                             : open.result.transaction(store).objectStore(store).get(key);
    req.onsuccess = () => { resolve(req.result ?? null); open.result.close(); };
    req.onerror = () => reject(req.error);
  };
})"""


def wait_async(page: Any, function: str, arg: Any = None, *, timeout: float = 20.0, what: str = "condition") -> Any:
    """Evaluate an async ``function`` until it resolves truthy; bounded by ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(function, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        page.wait_for_timeout(50)
