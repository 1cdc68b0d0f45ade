"""Monitoring of served models: feature drift."""
