"""results: the one layer that turns a run's results table into per-group numbers.

- :mod:`~restorebench.results.groups`: the group keys, unit status, runtime per megapixel, and
  each group's metric values (the mean of per-image values, or a set-level reduction);
- :mod:`~restorebench.results.board`: the leaderboard, built once per run: methods ranked by
  each metric's declared direction, the distance to the best, published numbers.

The console, MLflow, the report files and ``compare`` all read these; none of them
aggregates on its own or assumes "higher, in dB". May import: core.
"""
