"""Restoration tasks: one package per task, each registering its components on import."""
