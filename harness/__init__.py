"""restorebench: a distributed dataset-and-benchmark harness for image restoration.

The harness (this package) knows nothing about a particular restoration task; each task
lives in its own package under ``tasks/`` and registers its degradations, methods and
metrics with :mod:`harness.registry`.
"""

__version__ = "0.1.0"
