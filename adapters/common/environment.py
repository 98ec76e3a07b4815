"""A child's environment: a minimal base of the adapter's own, then what the operator names.

Only ``BASE_ENVIRONMENT`` of the adapter's environment reaches the child unasked. Each entry
of the operator's flag (``--pi-env``, ``--agent-env``) is ``NAME``, which copies the adapter's
value (an error if it has none), or ``NAME=VALUE``, which sets one.
"""

from __future__ import annotations

from collections.abc import Mapping

BASE_ENVIRONMENT = ("PATH", "HOME", "LANG", "TMPDIR")


class ConfigurationError(ValueError):
    """Adapter configuration that cannot work; the message names the fix."""


def child_environment(adapter_env: Mapping[str, str], entries: list[str], *, flag: str,
                      preset: Mapping[str, str] | None = None) -> dict[str, str]:
    """The base, ``preset``'s variables, then ``entries`` (named by ``flag`` in errors)."""
    env = {name: adapter_env[name] for name in BASE_ENVIRONMENT if name in adapter_env}
    env.update(preset or {})
    for entry in entries:
        name, has_value, value = entry.partition("=")
        if not name or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ConfigurationError(f"{flag} {name!r} is not a valid variable name")
        if has_value:
            env[name] = value
        elif name in adapter_env:
            env[name] = adapter_env[name]
        else:
            raise ConfigurationError(f"{flag} {name}: the adapter's environment has no {name} to copy")
    return env
