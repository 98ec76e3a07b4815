"""The ``<authority domain>:<lsn>`` form of the known-LSN and head-LSN headers (PROTOCOL.md).

A client sends ``X-Patchbay-Known-LSN``, the highest LSN it has seen from the core; the core
answers guarded requests with ``X-Patchbay-Head-LSN``, its journal's head. A value that is not
this form (no domain, not digits, past 64 bits, too long) is no claim at all.
"""

from __future__ import annotations

import re

from patchbay.wire._admit import INT_MAX

KNOWN_LSN_HEADER = "X-Patchbay-Known-LSN"
HEAD_LSN_HEADER = "X-Patchbay-Head-LSN"
_CLAIM = re.compile(r"([\x21-\x7e]{1,200}):([0-9]{1,19})")


def parse_claim(value: str | None) -> tuple[str, int] | None:
    """``domain:lsn`` as (domain, lsn), or None when it is not one."""
    if not value:
        return None
    match = _CLAIM.fullmatch(value.strip())
    if match is None:
        return None
    lsn = int(match.group(2))
    return (match.group(1), lsn) if lsn <= INT_MAX else None


def claim_value(domain: str, lsn: int) -> str:
    return f"{domain}:{lsn}"
