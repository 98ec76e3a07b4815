"""A scripted browser for the JSON API: it holds a cookie and a CSRF token and sends exactly the
headers a test asks for, so each request-protection check can be switched off one at a time.

Nothing is stored by httpx between requests (no cookie jar): the raw ``Set-Cookie`` header is
parsed here, which is also what the cookie-attribute assertions read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from tests.support.processes import PASSWORD


@attrs.frozen
class SetCookie:
    name: str
    value: str
    attributes: Mapping[str, str]  # lower-cased attribute name → value ("" for flags)

    @classmethod
    def parse(cls, header: str) -> SetCookie:
        first, *rest = [part.strip() for part in header.split(";")]
        name, _, value = first.partition("=")
        attributes = {}
        for part in rest:
            key, _, val = part.partition("=")
            attributes[key.strip().lower()] = val.strip()
        return cls(name, value, attributes)


def client(url: str, *, local_address: str | None = None, verify: Any = True) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=local_address, verify=verify)
    return httpx.Client(base_url=url, timeout=30, transport=transport, verify=verify)


class Browser:
    """One logged-in browser session (cookie + CSRF token) against one server."""

    def __init__(self, url: str, *, verify: Any = True, password: str = PASSWORD) -> None:
        self.url = url
        self.http = client(url, verify=verify)
        response = self.http.post("/api/login", json={"password": password}, headers={"Origin": url})
        assert response.status_code == 200, response.text
        self.raw_cookie = response.headers["set-cookie"]
        self.cookie = SetCookie.parse(self.raw_cookie)
        body = response.json()
        self.csrf: str = body["csrf_token"]
        self.session_id: str = body["session_id"]
        self.endpoint_id: str = body["endpoint_id"]

    def request(self, method: str, path: str, *, json: Any = None, cookie: bool = True, csrf: str | None = None,
                use_csrf: bool = True, origin: str | None = None, use_origin: bool = True,
                fetch_site: str | None = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
        sent: dict[str, str] = dict(headers or {})
        if cookie:
            sent["Cookie"] = f"{self.cookie.name}={self.cookie.value}"
        if use_csrf:
            sent["X-Patchbay-CSRF"] = csrf if csrf is not None else self.csrf
        if use_origin:
            sent["Origin"] = origin if origin is not None else self.url
        if fetch_site is not None:
            sent["Sec-Fetch-Site"] = fetch_site
        self.http.cookies.clear()
        return self.http.request(method, path, json=json, headers=sent)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, use_csrf=False, use_origin=False, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json={} if json is None else json, **kwargs)

    def close(self) -> None:
        self.http.close()


def bearer(url: str, *, password: str = PASSWORD, verify: Any = True) -> tuple[httpx.Client, dict[str, Any]]:
    """Log in as a CLI endpoint; a client sending ``Authorization: Bearer`` and the login answer."""
    answer = httpx.post(url + "/api/login", json={"password": password, "endpoint_kind": "cli"}, timeout=30,
                        verify=verify)
    assert answer.status_code == 200, answer.text
    body = dict(answer.json())
    http = httpx.Client(base_url=url, timeout=30, verify=verify,
                        headers={"Authorization": f"Bearer {body['token']}"})
    return http, body


def audit(http: httpx.Client, *kinds: str, limit: int = 500) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": limit}
    if kinds:
        params["kind"] = ",".join(kinds)
    response = http.get("/api/audit", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["records"])


def refusals(http: httpx.Client) -> list[dict[str, Any]]:
    """The details of every audited refusal of a request, oldest first as the audit lists them."""
    return [r["details"] for r in audit(http, "security.request_refused")]
