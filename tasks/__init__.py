"""The restoration tasks: one package per task (installed as ``restorebench.tasks.<name>``).

Each package registers its ``Task``, degradations, methods and metrics with
``restorebench.register`` when :func:`restorebench.load_plugins` imports it, and ships
its default ``suite.yaml``, its checkpoints and a README. A task imports only the
plugin API (``restorebench``), ``restorebench.neural`` and itself; a new task is a new
folder here (plus its line in pyproject's package list).
"""
