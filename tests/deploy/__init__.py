"""Deployment tests: tornad_io processes behind the nginx configuration shipped in deploy/."""
