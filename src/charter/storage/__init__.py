"""Persistence: the SQL store (SQLite or PostgreSQL), its migrations and the artifact store."""
