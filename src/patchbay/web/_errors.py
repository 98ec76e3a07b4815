"""One error mapping for the Quart routes: no client input produces a 5xx or an HTML page.

A body that is not a JSON object answers 409, a field that may not pass answers
``validation_failed`` naming it (422 body, 400 query string; audited when the caller is signed
in, so a stranger's refusals cost no journal space), a too-large body 413, any other HTTP error
its own status, all as JSON. A server bug answers 500 JSON and is logged. Every answer gets the
security headers (``app.headers`` runs after the error handlers too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from patchbay.web._guard import Guard
from patchbay.web._input import MAX_BODY, BodyRefused, InputRefused

log = logging.getLogger(__name__)


def register_errors(app: QuartTrio, guard: Guard, *, error: Callable[..., Response],
                    address: Callable[[], str]) -> None:
    @app.errorhandler(BodyRefused)
    async def not_an_object(problem: BodyRefused) -> Response:
        return error(problem.status, str(problem))

    @app.errorhandler(InputRefused)
    async def refused_field(problem: InputRefused) -> Response:
        if guard.identify(request.headers, request.cookies) is not None:
            await guard.audit_input(problem, request.method, request.path, address())
        return error(problem.status, str(problem), failure=problem.answer()["failure"], field=problem.field)

    @app.errorhandler(413)
    async def too_large(_problem: HTTPException) -> Response:
        return error(413, f"the request body is larger than {MAX_BODY} bytes")

    @app.errorhandler(HTTPException)
    async def http_error(problem: HTTPException) -> Response:
        status = problem.code or 400
        return error(status, problem.description or problem.name)

    @app.errorhandler(Exception)
    async def server_bug(_problem: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "internal server error")
