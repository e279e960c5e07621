"""The ``restorebench`` command line: parses options and calls the library; nothing more.

Heavy modules (numpy, Ray, MLflow, the tasks) are imported inside the commands so that
``restorebench --help`` starts fast.
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
)

TrackingUri = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking URI [default: $MLFLOW_TRACKING_URI or sqlite:///./mlflow.db]"),
]


@app.command()
def run(
    suite: Annotated[
        str | None, typer.Argument(help="Suite YAML, a task's name, or nothing for the default suite")
    ] = None,
    task: Annotated[list[str], typer.Option("--task", help="Only these tasks")] = [],
    dataset: Annotated[list[str], typer.Option("--dataset", help="Datasets, e.g. folder:DIR, bundled:photos")] = [],
    degradation: Annotated[list[str], typer.Option("--degradation", help="e.g. 'gaussian?sigma=25'")] = [],
    method: Annotated[list[str], typer.Option("--method", help="e.g. denoise/median or module:Class")] = [],
    out: Annotated[Path | None, typer.Option("--out", help="Run directory [default: runs/SUITE-TIME]")] = None,
    executor: Annotated[str, typer.Option("--executor", help="ray or local")] = "ray",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address [default: $RAY_ADDRESS or a local Ray]")
    ] = None,
    num_cpus: Annotated[int | None, typer.Option("--num-cpus", help="CPUs of a local Ray runtime")] = None,
    tracking_uri: TrackingUri = None,
    no_tracking: Annotated[bool, typer.Option("--no-tracking", help="Do not log to MLflow")] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Global seed of every degradation")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Complete an interrupted run directory")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute units found in the results cache")] = False,
    fail_on_error: Annotated[bool, typer.Option("--fail-on-error", help="Exit 1 when any unit failed")] = False,
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
        out=out,
        executor=executor,
        address=address,
        num_cpus=num_cpus,
        tracking_uri=tracking_uri,
        tracking=not no_tracking,
        seed=seed,
        resume=resume,
        use_cache=not no_cache,
    )
    with progress_bar() as progress:
        summary = run_suite(options, progress=progress)
    print_run_summary(summary)
    if report_dir is not None:
        from restorebench.report.files import FORMATS, write_report

        for path in write_report(summary.results, report_dir, FORMATS, run_dir=summary.run_dir):
            typer.echo(f"wrote {path}")
    if fail_on_error and summary.failed:
        raise typer.Exit(1)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory or results .parquet")],
    format: Annotated[
        str, typer.Option("--format", help="Comma-separated: md,csv,html (html: self-contained index.html + figures/)")
    ] = "md,csv,html",
    out: Annotated[Path | None, typer.Option("--out", help="Output folder [default: RUN_DIR/report]")] = None,
) -> None:
    """Write the leaderboard of a run as Markdown and CSV."""
    _plugins()
    from restorebench.report.files import write_report
    from restorebench.run.store import read_results

    results = read_results(run_dir)
    target = out or (run_dir / "report" if run_dir.is_dir() else run_dir.parent / "report")
    formats = [f.strip() for f in format.split(",") if f.strip()]
    for path in write_report(results, target, formats, run_dir=run_dir if run_dir.is_dir() else None):
        typer.echo(f"wrote {path}")


@app.command("log")
def log_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Log a stored run to MLflow (e.g. after MLflow was unreachable during the run)."""
    _plugins()
    from restorebench.commands.log import log_run_dir

    uri, run_id = log_run_dir(run_dir, tracking_uri)
    typer.echo(f"logged to {uri} as MLflow run {run_id}")


@app.command()
def compare(
    base: Annotated[str, typer.Argument(help="BASE: a run directory, results .parquet or MLflow run id")],
    cand: Annotated[str, typer.Argument(help="CAND: a run directory, results .parquet or MLflow run id")],
    metric: Annotated[list[str], typer.Option("--metric", help="Metrics to compare (repeat or comma-separate)")] = [
        "psnr"
    ],
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Smallest delta that counts, in the metric's units (dB for PSNR)")
    ] = 0.05,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of Markdown")] = False,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Also write the Markdown to this file")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resampling")] = 0,
    resamples: Annotated[int, typer.Option("--resamples", help="Bootstrap resamples")] = 2000,
    tracking_uri: TrackingUri = None,
) -> None:
    """Compare CAND's per-image results with BASE's; exit 1 when a method got significantly worse."""
    _plugins()
    from restorebench.commands.compare import compare_refs

    result = compare_refs(
        base, cand, tracking_uri=tracking_uri, metrics=metric, tolerance=tolerance, resamples=resamples, seed=seed
    )
    if markdown:
        markdown.write_text(result.to_markdown())
    typer.echo(result.to_json() if json_out else result.to_markdown())
    if result.regressions:
        raise typer.Exit(1)


@app.command()
def train(
    method: Annotated[str, typer.Argument(help="TASK/METHOD[?params], e.g. 'superres/srcnn?scale=3'")],
    data: Annotated[
        list[str], typer.Option("--data", help="Training datasets, e.g. folder:DIR [default: the recipe's]")
    ] = [],
    steps: Annotated[int | None, typer.Option("--steps", help="Optimisation steps [default: the recipe's]")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Checkpoint file [default: the committed one]")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    tracking_uri: TrackingUri = None,
    no_tracking: Annotated[bool, typer.Option("--no-tracking", help="Do not log to MLflow")] = False,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="CPU threads for torch [default: all cores]")
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
    )
    metrics = summary.metadata["metrics"]
    given = metrics["val_psnr_input"]
    typer.echo(
        f"wrote {summary.checkpoint}: {summary.metadata['steps']} steps in {summary.metadata['seconds']} s, "
        f"validation PSNR {metrics['val_psnr']:.2f} dB" + (f" (input {given:.2f} dB)" if given is not None else "")
    )
    if summary.mlflow_run_id:
        typer.echo(f"MLflow run {summary.mlflow_run_id} (experiment restorebench-training)")


@app.command()
def convert(
    weights: Annotated[
        Path,
        typer.Argument(
            help="Released weights: .pth/.pt state dict or pickled model, .mat, .safetensors, "
            "TF checkpoint PREFIX (PREFIX.index + PREFIX.data-*)"
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
    what: Annotated[str, typer.Argument(help="tasks, methods, degradations, metrics, datasets or checkpoints")],
) -> None:
    """List the registered tasks, methods, degradations, metrics, dataset sources, or the committed checkpoints."""
    _plugins()
    from restorebench.report.console import print_listing

    print_listing(what)


def _plugins() -> None:
    from restorebench.core.plugins import load_plugins

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
