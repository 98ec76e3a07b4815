"""A CLI's known LSN as evidence of lost history, and the head every guarded answer carries.

An authenticated request may carry ``X-Patchbay-Known-LSN`` (``wire/known_lsn.py``): the
highest LSN the client has seen from this core. Beyond the journal's head, for the same
authority domain, it is evidence that durable history was lost (``Core.history_beyond_head``,
source ``cli:<endpoint id>``). Anything else is ignored, never an error.
"""

from __future__ import annotations

from typing import Any

from patchbay.core import Core
from patchbay.wire.known_lsn import KNOWN_LSN_HEADER, claim_value, parse_claim


def report_known_lsn(core: Core, headers: Any, endpoint_id: str) -> None:
    """Hand the caller's claim to the core when it is beyond the head of this domain."""
    claim = parse_claim(headers.get(KNOWN_LSN_HEADER))
    if claim is not None and claim[0] == core.domain_id and claim[1] > core.state.last_lsn:
        core.history_beyond_head(f"cli:{endpoint_id}", claim[1])


def head_value(core: Core) -> str:
    return claim_value(core.domain_id, core.state.last_lsn)
