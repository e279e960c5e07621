"""The ``restorebench`` command line: parses options and calls the library; nothing more.

The whole command tree is here: ``run``, ``report``, ``log``, ``compare``, ``train``,
``convert``, ``list``. Heavy modules (numpy, Ray, MLflow, the tasks) are imported inside
the commands, so ``restorebench --help`` starts fast. Every user error is a
:class:`~restorebench.core.errors.UserError`, printed in one place (:func:`main`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from restorebench.core.errors import UserError

app = typer.Typer(
    help="restorebench: degrade images, run restoration methods, score, track and rank them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[default: ...]" must not be read as markup
)

# Options shared by several commands, defined once.
TrackingUri = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking URI [default: $MLFLOW_TRACKING_URI or sqlite:///./mlflow.db]"),
]
NoTracking = Annotated[bool, typer.Option("--no-tracking", help="Do not log to MLflow")]
Seed = Annotated[int | None, typer.Option("--seed", help="Global seed of every degradation [default: the suite's]")]
Many = typer.Option  # list options: repeat the flag


def _version(value: bool) -> None:
    if value:
        from restorebench import __version__

        typer.echo(f"restorebench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    """restorebench: degrade images, run restoration methods, score, track and rank them."""


@app.command()
def run(
    suite: Annotated[
        str | None, typer.Argument(help="Suite YAML, a task's name, or nothing for the default suite")
    ] = None,
    task: Annotated[list[str], Many("--task", help="Only these tasks")] = [],
    dataset: Annotated[list[str], Many("--dataset", help="Datasets, e.g. folder:DIR, bundled:photos")] = [],
    degradation: Annotated[list[str], Many("--degradation", help="e.g. 'gaussian?sigma=25'")] = [],
    method: Annotated[list[str], Many("--method", help="e.g. denoise/median or module:Class")] = [],
    metric: Annotated[
        list[str], Many("--metric", help="Metrics instead of the suite's, e.g. niqe (see: restorebench list metrics)")
    ] = [],
    out: Annotated[
        str | None,
        typer.Option(
            "--out", help="Run directory, a folder or a URI such as s3://bucket/runs/x [default: runs/SUITE-TIME]"
        ),
    ] = None,
    executor: Annotated[str, typer.Option("--executor", help="ray or local")] = "ray",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Ray cluster: auto, host:port or ray://host:port [default: $RAY_ADDRESS, else a private local Ray]",
        ),
    ] = None,
    num_cpus: Annotated[
        int | None, typer.Option("--num-cpus", help="CPUs of the private local Ray [default: all]")
    ] = None,
    tracking_uri: TrackingUri = None,
    no_tracking: NoTracking = False,
    seed: Seed = None,
    resume: Annotated[bool, typer.Option("--resume", help="Complete an interrupted run directory")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the results cache")] = False,
    fail_on_error: Annotated[bool, typer.Option("--fail-on-error", help="Exit 1 when any unit failed")] = False,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N images of every dataset")] = None,
    shard: Annotated[
        str | None,
        typer.Option("--shard", help="I/N: every N-th image of every dataset from the I-th (one of N jobs; 0-based)"),
    ] = None,
    save_outputs: Annotated[
        bool,
        typer.Option(
            "--save-outputs",
            help="Write every restored image to RUN_DIR/outputs/DATASET/DEGRADATION/METHOD/IMAGE.png "
            "(8-bit where the task scores 8-bit outputs, else 16-bit); computes every unit",
        ),
    ] = False,
    report_dir: Annotated[
        Path | None, typer.Option("--report", help="Also write the leaderboard (md, csv, html) here")
    ] = None,
) -> None:
    """Run a suite and print its leaderboard."""
    from restorebench.report.console import print_run_summary, progress_bar
    from restorebench.run.pipeline import RunOptions, run_suite

    options = RunOptions(
        suite=suite,
        tasks=task,
        datasets=dataset,
        degradations=degradation,
        methods=method,
        metrics=metric,
        out=out,
        executor=executor,
        address=address,
        num_cpus=num_cpus,
        tracking_uri=tracking_uri,
        tracking=not no_tracking,
        seed=seed,
        resume=resume,
        use_cache=not no_cache,
        limit=limit,
        shard=shard,
        save_outputs=save_outputs,
    )
    with progress_bar() as progress:
        summary = run_suite(options, progress=progress)
    print_run_summary(summary)
    if report_dir is not None:
        _write_report(summary.results_set, report_dir, None, summary.run_dir, summary.board)
    if not summary.scored:
        why = "every unit failed" if summary.failed else "every unit was skipped" if summary.skipped else "no unit ran"
        typer.echo(f"error: the run scored nothing: {why} (see above); exit 1", err=True)
        raise typer.Exit(1)
    if fail_on_error and summary.failed:
        raise typer.Exit(1)


@app.command()
def report(
    run_dirs: Annotated[
        list[str],
        typer.Argument(
            help="Run directories or results .parquet (paths or URIs); several, or a folder holding them, "
            "make one leaderboard"
        ),
    ],
    format: Annotated[str, typer.Option("--format", help="Comma-separated: md, csv, html")] = "md,csv,html",
    out: Annotated[Path | None, typer.Option("--out", help="Output folder [default: RUN_DIR/report]")] = None,
) -> None:
    """Write the leaderboard of a run (or of several runs of one suite): LEADERBOARD.md,
    leaderboard.csv, index.html + figures/."""
    _plugins()
    from restorebench.run.mirror import local_copy
    from restorebench.run.read import read_runs, run_dirs_in

    if out is None and (len(run_dirs) > 1 or any("://" in r for r in run_dirs)):
        raise UserError(
            f"where should the report of {', '.join(run_dirs)} go?", hint="give --out FOLDER (a local folder)"
        )
    local = [local_copy(r) for r in run_dirs]
    results = read_runs(local)
    runs = [run for path in local for run in run_dirs_in(path)]
    single = runs[0] if len(runs) == 1 and runs[0].is_dir() else None
    target = out or (single / "report" if single is not None else local[0].parent / "report")
    _write_report(results, target, format, single)


@app.command("log")
def log_cmd(
    run_dir: Annotated[str, typer.Argument(help="A run directory (a path or URI)")], tracking_uri: TrackingUri = None
) -> None:
    """Log a stored run to MLflow (e.g. after MLflow was unreachable); logging it again completes it."""
    _plugins()
    from restorebench.commands.log import log_run_dir

    uri, run_id = log_run_dir(run_dir, tracking_uri)
    typer.echo(f"logged to {uri} as MLflow run {run_id}")


@app.command()
def compare(
    base: Annotated[str, typer.Argument(help="BASE: a run directory, results .parquet or MLflow run id")],
    cand: Annotated[str, typer.Argument(help="CAND: a run directory, results .parquet or MLflow run id")],
    metric: Annotated[list[str], Many("--metric", help="Metrics to compare (repeat or comma-separate)")] = ["psnr"],
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Smallest delta that counts, in the metric's units (dB for PSNR)")
    ] = 0.05,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of Markdown")] = False,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Also write the Markdown to this file")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resampling")] = 0,
    resamples: Annotated[int, typer.Option("--resamples", help="Bootstrap resamples")] = 2000,
    tracking_uri: TrackingUri = None,
) -> None:
    """Compare CAND's per-image results with BASE's; exit 1 when a method got worse or failed."""
    _plugins()
    from restorebench.commands.compare import compare_refs, writable_file

    if markdown is not None:
        writable_file(markdown, "--markdown")
    try:
        result = compare_refs(
            base, cand, tracking_uri=tracking_uri, metrics=metric, tolerance=tolerance, resamples=resamples, seed=seed
        )
        if markdown:
            markdown.write_text(result.to_markdown())
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a crash of the gate is never read as "no regression" (0) or "regression" (1)
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(f"compare failed: {type(exc).__name__}: {first}") from exc
    typer.echo(result.to_json() if json_out else result.to_markdown())
    if result.regressions:
        raise typer.Exit(1)


@app.command()
def train(
    method: Annotated[str, typer.Argument(help="TASK/METHOD[?params], e.g. 'superres/srcnn?scale=3'")],
    data: Annotated[list[str], Many("--data", help="Training datasets, e.g. folder:DIR [default: the recipe's]")] = [],
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="Optimisation steps [default: the recipe's]")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Checkpoint file (.safetensors) [default: a new file under runs/train/]"),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of patches, augmentation and initialisation")] = 0,
    tracking_uri: TrackingUri = None,
    no_tracking: NoTracking = False,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="CPU threads for torch [default: all cores]")
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option("--init", help="Start from this checkpoint of the same network (train it longer)"),
    ] = None,
) -> None:
    """Train a neural method's checkpoint with its recipe."""
    _plugins()
    from restorebench.commands.train import train_method

    summary = train_method(
        method,
        data=data,
        steps=steps,
        out=out,
        seed=seed,
        tracking_uri=tracking_uri,
        tracking=not no_tracking,
        threads=threads,
        init=init,
    )
    typer.echo(summary.describe())


@app.command()
def convert(
    weights: Annotated[
        Path,
        typer.Argument(
            help="Released weights: .pth/.pt (state dict or pickled model), .mat, .safetensors, or a TF checkpoint PREFIX"
        ),
    ],
    method: Annotated[str, typer.Option("--method", help="TASK/NAME[?params] whose architecture they belong to")],
    out: Annotated[Path, typer.Option("--out", help="The .safetensors checkpoint to write")],
) -> None:
    """Convert released weights into a weights-only .safetensors checkpoint."""
    _plugins()
    from restorebench.commands.convert import convert_weights

    meta = convert_weights(weights, method, out)
    typer.echo(f"wrote {out} ({meta['architecture']}, from {meta['converted_from']['format']})")


@app.command("list")
def list_cmd(
    what: Annotated[
        str | None, typer.Argument(help="tasks, methods, degradations, metrics, datasets or checkpoints")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON records")] = False,
) -> None:
    """List what is registered (tasks, methods with their parameters, ...); nothing: what can be listed."""
    if what is not None:
        _plugins()
    from restorebench.commands.listings import print_listing

    print_listing(what, as_json=json_out)


def _write_report(results, target: Path, formats: str | None, run_dir: Path | None, board=None) -> None:
    from restorebench.report.files import FORMATS, write_report

    chosen = [f.strip() for f in formats.split(",") if f.strip()] if formats else list(FORMATS)
    for path in write_report(results, target, chosen, run_dir=run_dir, board=board):
        typer.echo(f"wrote {path}")


def _plugins() -> None:
    from restorebench.plugins import load_plugins

    load_plugins()


def main() -> None:
    """Console-script entry point: one place that turns user errors into messages."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
