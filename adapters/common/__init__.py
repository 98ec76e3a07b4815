"""Patchbay adapter processes: they connect out to the core and drive runtimes."""
