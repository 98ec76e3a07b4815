"""Patchbay: a control plane through which one operator drives agent sessions on many machines."""
