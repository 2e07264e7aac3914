"""A FastAPI host app embedding starlight_sequences (see ``app.py`` and docs/embedding.md)."""
