"""Every HTTP route with every method, odd path parameters, query strings, bodies, headers and
credentials, against a real ``serve`` (issue #14, item 10): client input never gets a 5xx, and
every answer, errors included, carries the security headers (API answers are JSON)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchbay.core import Core
from patchbay.web._fast import SECURITY_HEADERS
from patchbay.web.app import create_app
from tests.support.processes import PASSWORD, Deployment, serving_shell
from tests.support.wild_json import encode, values

pytestmark = pytest.mark.slow


def routes() -> list[str]:
    """Every rule of the app (HTTP and websocket), with ``<name>`` placeholders."""
    app = create_app(cast(Core, object()), server_key=b"k" * 32)
    rules = sorted({rule.rule for rule in app.url_map.iter_rules()} | {"/api/commands"})
    assert "/api/login" in rules and "/api/audit" in rules and "/adapter/v1" in rules
    return rules


def test_odd_static_names_are_404_not_500(clients: Clients) -> None:
    for name in ("x" * 3000, "a%00b.js", "..%2f..%2fetc%2fpasswd", "%ff.css"):
        answer = clients.http.get(f"/static/{name}")
        assert answer.status_code == 404, (name[:20], answer.status_code)
        assert answer.headers["X-Frame-Options"] == "DENY"


ROUTES = routes()
PLACEHOLDER = re.compile(r"<(?:[a-z]+:)?[a-z_]+>")
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
QUERY_KEYS = ["limit", "before", "after", "kind", "target", "idempotency_key", "state", "cursor", "domain"]

path_values = st.one_of(st.text(max_size=20), st.sampled_from(["..", "%00", "shell-1/demo", "x" * 3000, "\u202e",
                                                               "cmd-1", "a/b/c"]))
query_values = st.one_of(st.text(max_size=12), st.integers(-(2**80), 2**80).map(str),
                         st.sampled_from(["abc", "-1", "0", "1e3", " 5", "NaN", "1" * 30, "", "--5", "+3", "\u0663"]))
bodies = st.one_of(st.none(), values.map(lambda v: encode(v).encode("utf-8", "surrogatepass")),
                   st.binary(max_size=64), st.sampled_from([b"[1]", b'"x"', b"{", b"null", b'{"password": 1}']))
credentials = st.sampled_from(["none", "bearer", "browser", "browser-no-csrf", "forged"])


class Clients:
    def __init__(self, d: Deployment) -> None:
        self.d = d
        self.http = httpx.Client(base_url=d.url, timeout=30)
        self.token = ""
        self.cookie = ""
        self.csrf = ""

    def signed_in(self) -> None:
        """Log in again whatever the last example ended (logout, revocation, lockdown)."""
        if self.token and self.http.get("/api/me", headers={"Authorization": f"Bearer {self.token}"}).status_code == 200:
            return
        cli = self.http.post("/api/login", json={"password": PASSWORD, "endpoint_kind": "cli"})
        browser = self.http.post("/api/login", json={"password": PASSWORD}, headers={"Origin": self.d.url})
        assert cli.status_code == browser.status_code == 200, (cli.text, browser.text)
        self.token = cli.json()["token"]
        self.cookie = browser.headers["set-cookie"].split(";", 1)[0]
        self.csrf = browser.json()["csrf_token"]
        self.http.cookies.clear()

    def headers(self, mode: str) -> dict[str, str]:
        if mode == "bearer":
            return {"Authorization": f"Bearer {self.token}"}
        if mode.startswith("browser"):
            sent = {"Cookie": self.cookie, "Origin": self.d.url}
            if mode == "browser":
                sent["X-Patchbay-CSRF"] = self.csrf
            return sent
        if mode == "forged":
            return {"Authorization": "Bearer forged", "Cookie": "patchbay_session=forged", "Origin": "http://evil"}
        return {}


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    with serving_shell(tmp_path_factory.mktemp("routes")) as d:
        c = Clients(d)
        yield c
        c.http.close()


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    rule = draw(st.sampled_from(ROUTES))
    path = PLACEHOLDER.sub(lambda _m: quote(draw(path_values), safe="/" if "path:" in _m.group(0) else ""), rule)
    return {"method": draw(st.sampled_from(METHODS)), "path": path,
            "params": draw(st.dictionaries(st.sampled_from(QUERY_KEYS), query_values, max_size=3)),
            "body": draw(bodies), "credentials": draw(credentials),
            "content_type": draw(st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                                  "multipart/form-data; boundary=x"]))}


@settings(max_examples=150, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(requests())
def test_no_client_input_gets_a_5xx_and_every_answer_has_the_security_headers(clients: Clients,
                                                                               request: dict[str, Any]) -> None:
    clients.signed_in()
    headers = {**clients.headers(request["credentials"]), "content-type": request["content_type"]}
    answer = clients.http.request(request["method"], request["path"], params=request["params"],
                                  content=request["body"], headers=headers)
    clients.http.cookies.clear()
    shown = (request["method"], request["path"][:80], answer.status_code, answer.text[:200])
    assert answer.status_code < 500, shown
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, (name, *shown)
    if request["path"].startswith("/api/") and answer.content:  # (HEAD and OPTIONS answer no body)
        assert answer.headers["content-type"].startswith("application/json"), shown
