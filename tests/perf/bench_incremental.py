"""Incremental regeneration: rerun the default suite after one method's checkpoint changed.

Run: ``python tests/perf/bench_incremental.py [--method denoise/dncnn]``. A cold run of the
default suite (empty results cache) is timed, then the same suite with the method's
checkpoint replaced by a slightly perturbed copy; only that method's units should be
computed. Prints both times, their ratio and the unit counts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def perturbed_copy(method_ref: str, out: Path) -> Path:
    """The method's (first) checkpoint with every floating tensor scaled by 1.001."""
    from restorebench.core.build import build_method
    from restorebench.neural.checkpoints import load_checkpoint, save_checkpoint

    path = build_method(method_ref).checkpoints()[0]
    state, meta = load_checkpoint(path)
    state = {k: v * 1.001 if v.is_floating_point() else v for k, v in state.items()}
    save_checkpoint(out, state, meta)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", default="denoise/dncnn")
    args = parser.parse_args()
    from restorebench import load_plugins

    load_plugins()  # the registries fill only when asked (builds below look names up)
    import yaml

    from restorebench.run.pipeline import RunOptions, run_suite
    from restorebench.run.plan import load_suite

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["RESTOREBENCH_CACHE"] = str(tmp / "cache.sqlite")
        start = time.perf_counter()
        cold = run_suite(RunOptions(out=tmp / "cold", tracking=False))
        cold_s = time.perf_counter() - start

        suite, _ = load_suite(None)
        data = suite.model_dump()
        changed = f"{args.method}?checkpoint={perturbed_copy(args.method, tmp / 'changed.safetensors')}"
        for block in data["tasks"]:
            block["methods"] = [changed if m == args.method else m for m in block["methods"]]
        (tmp / "suite.yaml").write_text(yaml.safe_dump(data))
        start = time.perf_counter()
        warm = run_suite(RunOptions(suite=str(tmp / "suite.yaml"), out=tmp / "warm", tracking=False))
        warm_s = time.perf_counter() - start
        own = int((warm.results.drop_duplicates("unit_id")["method"] == args.method).sum())
    print(f"cold run of the default suite: {cold.units} units computed in {cold_s:.1f} s")
    print(
        f"after changing {args.method}'s checkpoint: {warm.computed} units computed ({own} are its own), "
        f"{warm.from_cache} from cache, in {warm_s:.1f} s; rerun / cold = {warm_s / cold_s:.3f}"
    )


if __name__ == "__main__":
    main()
