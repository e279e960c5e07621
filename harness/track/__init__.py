"""track: everything that talks to MLflow (and nothing else in restorebench does).

- :mod:`~restorebench.track.client`: the tracking URI, reachability, experiments;
- :mod:`~restorebench.track.runs`: a run's parent and child runs, per-image tables, sample grids;
- :mod:`~restorebench.track.training`: one ``restorebench train`` run;
- :mod:`~restorebench.track.fetch`: a logged run's results back, for ``compare``.

Only the driver calls these, after the results are stored; MLflow is imported inside the
functions, so importing this package is cheap. May import: core, report.
"""

from restorebench.track.client import resolve_uri
from restorebench.track.fetch import fetch_results
from restorebench.track.runs import log_run
from restorebench.track.training import TrainingTracker

__all__ = ["TrainingTracker", "fetch_results", "log_run", "resolve_uri"]
