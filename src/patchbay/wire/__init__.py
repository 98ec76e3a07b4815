"""Wire formats: adapter protocol frames and JSON views for clients (one converter per format)."""
