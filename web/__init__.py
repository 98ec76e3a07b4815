"""The web cockpit: static ES modules and CSS served by the core (no build step)."""
