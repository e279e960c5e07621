"""run: one ``restorebench run``, in the order the data flows.

- :mod:`~restorebench.run.plan`: the suite expanded into work units, and each method's description;
- :mod:`~restorebench.run.units`: a unit, its content id and its seeded random generator;
- :mod:`~restorebench.run.batches`: units cut into batches;
- :mod:`~restorebench.run.executors` / :mod:`~restorebench.run.ray_executor`: in-process or on Ray;
- :mod:`~restorebench.run.ray_runtime`: the Ray a run starts (a lean private head) or joins;
  :mod:`~restorebench.run.minimal_agent`, that head's dashboard agent without its modules;
- :mod:`~restorebench.run.worker`: what a worker does with a batch (load, degrade, restore, score);
- :mod:`~restorebench.run.record`: each batch of results into the run directory as it lands;
- :mod:`~restorebench.run.store`: run directories (create, resume, shards, compaction);
- :mod:`~restorebench.run.tables`: the results table (columns, schema, Parquet reading and writing);
- :mod:`~restorebench.run.cache`: the results cache shared by all runs;
- :mod:`~restorebench.run.mirror`: a run directory on a filesystem URI (staged and synced);
- :mod:`~restorebench.run.outputs`: ``--save-outputs`` files;
- :mod:`~restorebench.run.pipeline`: ``run_suite``, the whole run.

May import: core, data, score, neural (through methods), report (sample crops), track
(after the run). Ray is imported only in ray_executor.py, ray_runtime.py and minimal_agent.py.
"""
