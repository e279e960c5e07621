"""What a run pays for its private Ray: start, the first tasks, shutdown.

Run: ``python tests/perf/bench_ray_start.py [--repeats 5] [--cpus 2]``. Each repeat is a
fresh process that starts a private local Ray, runs 20 trivial tasks, shuts it down and
reports the three times; ``ray`` does it with Ray's own ``ray.init(include_dashboard=False)``,
``restorebench`` with :func:`restorebench.run.ray_runtime.start_local_ray` (the head
without the processes a one-node run never uses). Prints the medians (the bar: start plus
shutdown at most 1.5 s on this machine), the start split at the moment the driver connects.

Where the lean start goes (Ray 2.60, 2 cores), from the head's logs and each process's CPU
time: the GCS is up in ~0.03 s; the raylet registers with the GCS only once its two Python
agents have written their ports: the runtime-env agent (importing Ray and aiohttp: ~0.65 s of
CPU, the longest) and the dashboard agent (importing Ray; ~0.45 s of CPU, after its modules
were dropped: they took 0.8 s more), ~0.7 s after it starts; then the raylet holds the
driver's registration until its two prestarted workers (each importing Ray: ~0.5 s of CPU)
have registered, ~0.5 s. In all ~2.5 s of CPU on 2 cores, most of it Ray's own imports.
Ray's raylet refuses to start without either agent. Turning prestarting off
(``_system_config={"prestart_worker_first_driver": False}``) gives a start of ~0.9 s, but
only by moving the workers' start to the first tasks (0.45 s -> 1.25 s): a run pays more.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = """
import json, sys, time
import ray
import ray._private.worker as worker
mode, cpus = sys.argv[1], int(sys.argv[2])
marks = {}
connect = worker.connect
def timed_connect(*args, **kwargs):  # the head is up and its raylet registered when the driver connects
    marks["node"] = time.perf_counter() - t0
    return connect(*args, **kwargs)
worker.connect = timed_connect
t0 = time.perf_counter()
if mode == "ray":
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
else:
    from restorebench.run.ray_runtime import start_local_ray
    start_local_ray(cpus)
t1 = time.perf_counter()
@ray.remote
def f(x):
    return x + 1
assert sum(ray.get([f.remote(i) for i in range(20)])) == 210
t2 = time.perf_counter()
ray.shutdown()
t3 = time.perf_counter()
print(json.dumps({"start": t1 - t0, "node": marks["node"], "connect": t1 - t0 - marks["node"], "tasks": t2 - t1, "shutdown": t3 - t2}))
"""


def once(mode: str, cpus: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(cpus)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[dict[str, float]]] = {"ray": [], "restorebench": []}
    for _ in range(args.repeats):
        for mode in times:  # interleaved, so a busy moment hits both
            times[mode].append(once(mode, args.cpus))
    for mode, runs in times.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("start", "node", "connect", "tasks", "shutdown")}
        print(
            f"{mode:>12}: start {med['start']:.2f} s (head and raylet up {med['node']:.2f} s, driver connected "
            f"{med['connect']:.2f} s), first 20 tasks {med['tasks']:.2f} s, "
            f"shutdown {med['shutdown']:.2f} s; start + shutdown {med['start'] + med['shutdown']:.2f} s "
            f"(median of {len(runs)}; bar: 1.5 s)"
        )


if __name__ == "__main__":
    main()
