"""``python -m patchbay`` runs the CLI (used to start local adapters with this interpreter)."""

from patchbay.cli import main

main()
