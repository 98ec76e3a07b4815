"""The core: journal-backed state, the acceptance API, the adapter plane, timers and the bus.

``Core`` is the public async API used by the web app, the adapter endpoint, the CLI and tests.
"""

from patchbay.core._adapters import AdapterPlane
from patchbay.core._connection import AdapterConnection
from patchbay.core._core import (
    OPERATOR_ID,
    Core,
    CoreSettings,
    LoginResult,
    SubmissionResult,
    audit_view,
    initialize_journal,
)

__all__ = [
    "OPERATOR_ID",
    "AdapterConnection",
    "AdapterPlane",
    "Core",
    "CoreSettings",
    "LoginResult",
    "SubmissionResult",
    "audit_view",
    "initialize_journal",
]
