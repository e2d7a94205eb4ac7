"""Scoring service: routing, scoring, prediction logging and the HTTP app."""
