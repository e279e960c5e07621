"""report: what a run's results look like to people.

- :mod:`~restorebench.report.leaderboard`: the ranked tables (pandas) and their Markdown;
- :mod:`~restorebench.report.files`: writing LEADERBOARD.md, leaderboard.csv, index.html;
- :mod:`~restorebench.report.html`: the self-contained HTML page (tasks may add sections);
- :mod:`~restorebench.report.figures`: its plots and before/after grids (matplotlib, no pyplot);
- :mod:`~restorebench.report.samples`: sample crops on disk and grids built from them;
- :mod:`~restorebench.report.console`: the progress bar and run summaries.

May import: core.
"""
