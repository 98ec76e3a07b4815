"""The web surface: the quart-trio app (cockpit files, JSON API, client stream, adapter endpoint)."""
