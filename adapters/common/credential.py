"""An adapter's credential file: the credential, and how to reach and trust the core.

The first line is the credential itself, so a file of one line (what ``adapter add`` wrote before
TLS pinning) is still a valid credential file. Lines after it are ``name = value`` settings;
blank lines and ``#`` comments are ignored::

    pbk_…credential…
    # written by `patchbay adapter add`; keep this file secret (0600)
    core_url = https://core.lan:8765
    core_fingerprint = AB:CD:…:EF

``core_fingerprint`` pins the core's TLS certificate (SHA-256, as ``openssl x509 -fingerprint
-sha256`` shows it, colons optional); ``core_url`` is used when ``adapter run`` gets no
``--core``. Unknown settings are refused, so a misspelt pin is never silently ignored.
"""

from __future__ import annotations

from pathlib import Path

import attrs
from patchbay_adapters.common.trust import format_fingerprint, normalize_fingerprint

SETTINGS = ("core_url", "core_fingerprint")


class CredentialFileError(Exception):
    """The credential file is missing, empty or malformed; the message names the line."""


@attrs.frozen
class CredentialFile:
    credential: str
    core_url: str | None = None
    core_fingerprint: str | None = None  # lower-case hex, no colons

    def render(self) -> str:
        lines = [self.credential]
        if self.core_url or self.core_fingerprint:
            lines.append("# written by `patchbay adapter add`; keep this file secret (0600)")
        if self.core_url:
            lines.append(f"core_url = {self.core_url}")
        if self.core_fingerprint:
            lines.append(f"core_fingerprint = {format_fingerprint(self.core_fingerprint)}")
        return "\n".join(lines) + "\n"


def parse_credential_file(text: str, source: str = "credential file") -> CredentialFile:
    lines = text.splitlines()
    credential = lines[0].strip() if lines else ""
    if not credential or credential.startswith("#") or " " in credential:
        raise CredentialFileError(f"{source}: its first line must be the adapter's credential "
                                  f"(one word), not {credential[:20]!r}")
    values: dict[str, str] = {}
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not value:
            raise CredentialFileError(f"{source} line {number}: expected `name = value`, not {line!r}")
        if name not in SETTINGS:
            raise CredentialFileError(f"{source} line {number}: unknown setting {name!r} "
                                      f"(known: {', '.join(SETTINGS)})")
        values[name] = value
    fingerprint = values.get("core_fingerprint")
    if fingerprint is not None:
        try:
            fingerprint = normalize_fingerprint(fingerprint)
        except ValueError as problem:
            raise CredentialFileError(f"{source}: core_fingerprint: {problem}") from None
    return CredentialFile(credential=credential, core_url=values.get("core_url"), core_fingerprint=fingerprint)


def read_credential_file(path: Path) -> CredentialFile:
    try:
        text = path.read_text()
    except OSError as problem:
        raise CredentialFileError(f"cannot read credential file {path}: {problem.strerror or problem}") from None
    return parse_credential_file(text, f"credential file {path}")
