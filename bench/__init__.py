"""Benchmarks for tornad_io against bare Tornado and python-socketio (see bench/README.md).

Run ``.venv/bin/python -m bench.run`` (or ``make bench``, which first installs
``bench/requirements.txt``).  ``--smoke`` runs every contestant and scenario
at a tiny size and only checks that every message arrived.
"""
