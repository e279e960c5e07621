"""commands: the library functions behind the commands that are more than a run.

- :mod:`~restorebench.commands.compare`: the regression gate (paired bootstrap per method);
- :mod:`~restorebench.commands.train`: a neural method's recipe fitted into a checkpoint;
- :mod:`~restorebench.commands.convert`: released weights into a ``.safetensors`` checkpoint;
- :mod:`~restorebench.commands.listings`: ``restorebench list`` (tasks, methods, datasets and cards, checkpoints);
- :mod:`~restorebench.commands.log`: a stored run directory logged to MLflow.

May import: core, data, run (results tables), neural, track, report.
"""
