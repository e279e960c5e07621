"""Neural inference through the harness (a Ray actor) against a bare PyTorch loop.

Run: ``python tests/perf/bench_neural.py [--method denoise/dncnn] [--degradation 'gaussian?sigma=25']``.
Both sides load, degrade, run the network and score the same images with the same
thread budget; the target is a ratio of at most 1.10. Prints the device used, and the
actor's start-up (a worker process importing torch and loading the weights, once per run
and method) on its own, since on a few images it dominates the difference.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def bare_loop(method_ref: str, dataset: str, degradation: str) -> float:
    """load -> degrade -> prepare -> net(x) -> finish -> metrics, with no harness around it."""
    import torch

    from restorebench.core.build import build_degradation, build_method, build_source
    from restorebench.neural.checkpoints import load_checkpoint
    from restorebench.run.units import degradation_rng
    from restorebench.score import metrics

    start = time.perf_counter()
    method = build_method(method_ref)
    method.setup()
    nets = {}
    source = build_source(dataset)
    deg = build_degradation(degradation)
    with torch.inference_mode():
        for image in source.list_images():
            clean = source.load(image)
            item = deg.apply(clean, degradation_rng(0, image, deg.identity()))
            path = method.checkpoint_for(item)
            if path not in nets:
                state, meta = load_checkpoint(path)
                net = method.build_network(meta.get("config", {}))
                net.load_state_dict(state)
                nets[path] = (net.eval(), meta.get("config", {}).get("channels"))
            net, channels = nets[path]
            x, context = method.prepare(item)
            x = torch.from_numpy(x)[None]
            if channels == 3 and x.shape[1] == 1:
                y = net(x.expand(1, 3, *x.shape[2:])).mean(dim=1, keepdim=True)
            elif channels == 1 and x.shape[1] == 3:
                y = net(x.reshape(3, 1, *x.shape[2:])).reshape(1, 3, *x.shape[2:])
            else:
                y = net(x)
            out = metrics.quantize_8bit(method.finish(y[0].numpy(), context, item))
            ref = item.reference if item.reference is not None else clean
            metrics.psnr(out, ref), metrics.ssim(out, ref)
            metrics.psnr(out, ref, y_channel=True), metrics.ssim(out, ref, y_channel=True)
    return time.perf_counter() - start


def harness_run(method_ref: str, dataset: str, degradation: str, task: str, out: Path) -> float:
    from restorebench.run.pipeline import RunOptions, run_suite

    start = time.perf_counter()
    run_suite(
        RunOptions(
            tasks=(task,),
            datasets=(dataset,),
            degradations=(degradation,),
            methods=(method_ref,),
            out=out,
            executor="ray",
            tracking=False,
            use_cache=False,
        )
    )
    return time.perf_counter() - start


def actor_start_up(method_ref: str, cpus: int) -> float:
    """Seconds from asking Ray for the method's actor to its first (empty) batch answered:
    a worker process, torch's import and the weights, paid once per run and method."""
    import ray

    from restorebench.run.executors import _MethodActor

    start = time.perf_counter()
    actor = ray.remote(_MethodActor).options(num_cpus=cpus).remote(method_ref, cpus)
    ray.get(actor.run.remote([]))
    elapsed = time.perf_counter() - start
    ray.kill(actor)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", default="denoise/dncnn")
    parser.add_argument("--degradation", default="gaussian?sigma=25")
    parser.add_argument("--dataset", default="bundled:photos")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved bare / harness runs")
    args = parser.parse_args()
    from restorebench import load_plugins

    load_plugins()  # the registries fill only when asked (builds below look names up)
    import ray
    import torch

    from restorebench.run.worker import set_thread_limit

    task = args.method.split("/")[0]
    set_thread_limit(args.cpus)
    bare_loop(args.method, args.dataset, args.degradation)  # warm-up: imports, first-call costs
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ref = f"{args.method}?num_cpus={args.cpus}"
    bare, runs, starts = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        harness_run(ref, args.dataset, args.degradation, task, Path(tmp) / "warm")  # Ray's own start-up excluded
        for i in range(args.repeats):  # interleaved, so drift in the machine's speed hits both sides
            bare.append(bare_loop(args.method, args.dataset, args.degradation))
            runs.append(harness_run(ref, args.dataset, args.degradation, task, Path(tmp) / f"r{i}"))
            starts.append(actor_start_up(ref, args.cpus))
    ray.shutdown()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({args.cpus} threads)"
    bare_s, run_s, start_s = float(np.median(bare)), float(np.median(runs)), float(np.median(starts))
    print(
        f"{args.method} on {args.dataset} / {args.degradation}, device {device}, medians of {args.repeats}: "
        f"bare PyTorch loop {bare_s:.2f} s, harness via a Ray actor {run_s:.2f} s, ratio {run_s / bare_s:.3f}; "
        f"the actor's start-up (process, torch import, weights; once per run and method) {start_s:.2f} s, "
        f"ratio without it {(run_s - start_s) / bare_s:.3f} (target <= 1.10)"
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
