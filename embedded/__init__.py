"""`make run`'s server (not deployed to Lambda): granian in front of app.py's Chalice app through
Chalice's own local gateway (wsgi.py, server.py), and the start-up on SQLite and the local key store
(run.py)."""
