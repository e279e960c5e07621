"""Starting or joining the Ray runtime a run executes on.

- No ``--address`` and no ``RAY_ADDRESS``: a private local Ray, started for this run and
  stopped after it. It never joins a cluster that ``ray start`` left on the machine, and
  every socket it opens listens on the loopback interface only.
- ``--address auto``: the cluster started on this machine with ``ray start``.
- ``--address host:port`` or ``ray://host:port``: that cluster; the address is probed
  first, so an unreachable one is an error within seconds instead of a long hang.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Any

from restorebench.core.errors import UserError

log = logging.getLogger(__name__)

# Ray resolves a node IP of 127.0.0.1 to the machine's external address unless it runs
# "without clusters" (its setting for Windows and macOS): then the GCS, raylets, the
# runtime-env agent, the driver and the workers all listen on the loopback interface.
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
PROBE_TIMEOUT_S = 5.0


def resolve_address(address: str | None) -> str | None:
    """``--address``, else ``$RAY_ADDRESS``; None means a private local Ray."""
    return address or os.environ.get("RAY_ADDRESS") or None


def start_local_ray(num_cpus: int | None = None, **kwargs: Any) -> None:
    """Start a private local Ray whose every socket listens on 127.0.0.1, without the
    head processes a run on one fixed node never uses.

    That lean start patches Ray internals (:func:`_lean_hooks`). Where this Ray lacks one of
    them, or its start fails with them in place (what was started is then stopped), Ray's own
    ``ray.init`` starts it instead, on 127.0.0.1 only just the same, and one warning says so:
    a few seconds slower, never a broken run.
    """
    import ray

    options = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False, **kwargs}
    own_config = options.get("_system_config", {})
    with _loopback_only(), _quiet_auth_notice():
        hooks = _lean_hooks()
        if isinstance(hooks, str):
            reason = f"it lacks {hooks}"
        else:
            before = _descendants(os.getpid())
            try:
                with _patched(hooks):
                    lean_config = {**LEAN_SYSTEM_CONFIG, **own_config}
                    ray.init(address="local", num_cpus=num_cpus, **{**options, "_system_config": lean_config})
                return
            except Exception as exc:  # broad: a changed internal: its TypeError, AttributeError, a timeout, ...
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                reason = f"its start failed with them ({type(exc).__name__}: {first})"
                _undo_failed_start(before)
        log.warning(
            "Ray %s does not take restorebench's fast private start (%s): starting it with Ray's own "
            "ray.init instead, on 127.0.0.1 only as before, a few seconds slower",
            ray.__version__,
            reason,
        )
        ray.init(address="local", num_cpus=num_cpus, **options)


_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"
_AUTH_NOTICE = "Token authentication is enabled for this Ray cluster"


def _not_auth_notice(record: Any) -> bool:
    """A logging filter: False for Ray's notice that a new local cluster uses token authentication."""
    return not str(record.msg).startswith(_AUTH_NOTICE)


@contextlib.contextmanager
def _quiet_auth_notice() -> Iterator[None]:
    """Ray (2.60 here) turns token authentication on for every new local cluster and says so
    on every run, with how to turn it off. A private head started and stopped by the run keeps it
    on (the token in ~/.ray, as Ray makes it); only the notice is dropped."""
    logger = logging.getLogger(_AUTH_LOGGER)
    logger.addFilter(_not_auth_notice)
    try:
        yield
    finally:
        logger.removeFilter(_not_auth_notice)


# Ray settings for a private head. Task events feed Ray's state API and dashboard (neither
# used here); with them on, every driver's shutdown flushed them: 0.32 s -> 0.08 s. Ray runs
# its workers at niceness 15, below its own processes; on a private head the workers are the
# run, and at 15 every short burst of the driver, raylet or GCS preempted them: one worker
# against a bare loop (tests/perf/bench_harness.py, medians of 6 pairs' ratios) 1.043-1.068
# in four runs at 15, 1.001-1.026 in two at 0.
LEAN_SYSTEM_CONFIG = {"task_events_report_interval_ms": 0, "worker_niceness": 0}


# Processes `ray.init` starts on a new head that a private, fixed, single-node Ray does not
# need: the dashboard's API server (with the dashboard off it serves only usage statistics),
# the autoscaler's monitor (nothing to scale; it also ignores SIGTERM, so every shutdown
# waited its full second for it) and the log monitor (it streams worker logs to the driver,
# which `log_to_driver=False` turns off). And the raylet's dashboard agent runs as on a
# `pip install ray` without the dashboard's packages: Ray's "minimal" mode (no HTTP server, no
# metrics export; which also spares the driver importing those packages), without the agent
# modules (:mod:`restorebench.run.minimal_agent`). With the prompt wait for the raylet's
# registration (:func:`_prompt_get_node`) and LEAN_SYSTEM_CONFIG they take `ray.init` from
# ~3.6-4.0 s to ~1.2 s and shutdown from 1.4 s to 0.08 s on 2 cores
# (tests/perf/bench_ray_start.py).
_UNNEEDED_HEAD_PROCESSES = ("start_api_server", "start_monitor", "start_log_monitor")


def _lean_hooks() -> list[tuple[Any, str, Any, Any]] | str:
    """(owner, attribute, Ray's original, its replacement) for each hook of :data:`LEAN_HOOKS`;
    or, where this Ray lacks any of them, their names (then nothing is patched)."""
    found, missing = [], []
    for ref, make in LEAN_HOOKS.items():
        where = _resolve(ref)
        if where is None:
            missing.append(ref)
        elif make is not None:
            owner, name = where
            original = vars(owner)[name]
            found.append((owner, name, original, make(original)))
    return ", ".join(missing) if missing else found


def _resolve(ref: str) -> tuple[Any, str] | None:
    """The owner and attribute name of ``"module:Class.attribute"``, None where this Ray lacks it
    (an attribute of the class itself: one it inherits is not the one patched)."""
    import importlib

    module, _, path = ref.partition(":")
    try:
        owner: Any = importlib.import_module(module)
    except ImportError:
        return None
    *classes, name = path.split(".")
    for cls in classes:
        owner = vars(owner).get(cls)
        if not isinstance(owner, type):
            return None
    return (owner, name) if callable(vars(owner).get(name)) else None


def _replaced_by(replacement: Any) -> Any:
    return lambda original: replacement


@contextlib.contextmanager
def _patched(hooks: list[tuple[Any, str, Any, Any]]) -> Iterator[None]:
    """Ray with ``hooks`` in place, its own functions back afterwards (also after a failure)."""
    try:
        for owner, name, _, replacement in hooks:
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, original, _ in hooks:
            setattr(owner, name, original)


def _skip(self: Any, *args: Any, **kwargs: Any) -> None:
    return None


def _minimal() -> ImportError:
    return ImportError("a private restorebench Ray runs the raylet's agents minimal")


# Ray's builder of the Python command line of each process it starts (the hook for memray).
_PYTHON_COMMAND = "_build_python_executable_command_memory_profileable"


def _minimal_dashboard_agent(build: Any) -> Any:
    """Ray's command builder, with the dashboard agent started through
    :mod:`restorebench.run.minimal_agent` (no agent modules: 0.8 s of its start on 2 cores)."""

    def command(component: str, session_dir: str, *args: Any, **kwargs: Any) -> list[str]:
        from ray._private import ray_constants

        from restorebench.run import minimal_agent

        line = build(component, session_dir, *args, **kwargs)
        if component != ray_constants.PROCESS_TYPE_DASHBOARD_AGENT or "-m" in line:  # memray's, say
            return line
        # run as a script, by its path: the agent then needs no import of restorebench (a
        # `restorebench/` folder in the working directory cannot stand in for the package)
        return [*line, os.path.abspath(minimal_agent.__file__)]

    return command


REGISTRATION_POLL_S = 0.01
REGISTRATION_TIMEOUT_S = 30.0  # Ray's own wait for a new raylet


def _prompt_get_node(get_node: Any) -> Any:
    """Ray's ``get_node``, called as soon as the node has registered with the GCS.

    ``ray.init`` asks for the new node's record ~0.1 s after starting the raylet, long before
    it registers (the raylet waits for its agents: ~0.7 s on 2 cores), and Ray's GCS client
    retries a missing node only once a second: every start was rounded up to the next whole
    second (1.7 s or 2.7 s on this machine, by how the raylet's wait fell). Polling the node
    table every 10 ms first returns within 10 ms of the registration.
    """

    def prompt(gcs_address: str, node_id: str) -> Any:
        import time

        deadline = time.monotonic() + REGISTRATION_TIMEOUT_S
        try:
            from ray._raylet import GcsClient

            client = GcsClient(address=gcs_address)
            while time.monotonic() < deadline:
                if any(node.hex() == node_id for node in client.get_all_node_info(timeout=1)):
                    break
                time.sleep(REGISTRATION_POLL_S)
        except Exception as exc:  # broad (Ray internals): Ray's own call below waits for the GCS and says why
            log.debug(
                "polling the GCS for node %s stopped (%s: %s); Ray's own wait takes over",
                node_id,
                type(exc).__name__,
                exc,
            )
        return get_node(gcs_address, node_id)

    return prompt


PORT_POLL_MS = 5


def _prompt_port_wait(wait: Any) -> Any:
    """Ray's wait for a port file a process it started writes, polling every 5 ms.

    The new GCS writes its port ~20 ms after it starts; Ray looks every 100 ms, so every start
    waited ~85 ms more for it (ray.init's ``start_gcs_server``: 0.105 s -> ~0.03 s).
    """

    def prompt(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("poll_interval_ms", PORT_POLL_MS)
        return wait(*args, **kwargs)

    return prompt


# The Ray internals a lean start patches ("module:attribute" -> a function of Ray's original that
# gives its replacement), as Ray 2.60 has them: the head processes a one-node run does not need
# (:data:`_UNNEEDED_HEAD_PROCESSES`), the raylet's agents started minimal, the dashboard agent
# without its modules (``get_all_modules``, replaced inside that agent by
# :mod:`restorebench.run.minimal_agent`: only looked up here), and the prompt waits for the GCS's
# port and the raylet's registration.
LEAN_HOOKS: dict[str, Callable[[Any], Any] | None] = {
    **{f"ray._private.node:Node.{name}": _replaced_by(_skip) for name in _UNNEEDED_HEAD_PROCESSES},
    "ray._private.utils:get_dashboard_dependency_error": _replaced_by(_minimal),
    f"ray._private.services:{_PYTHON_COMMAND}": _minimal_dashboard_agent,
    "ray._private.services:get_node": _prompt_get_node,
    "ray._private.node:wait_for_persisted_port": _prompt_port_wait,
    "ray.dashboard.utils:get_all_modules": None,
}


def connect(address: str | None, *, num_cpus: int | None = None) -> bool:
    """Start or join Ray for a run; True when this call started it (the run shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    address = resolve_address(address)
    if address is None:
        start_local_ray(num_cpus)
        return True
    if num_cpus is not None:
        raise UserError(
            "--num-cpus sizes a local Ray; a cluster's CPUs are its own", hint="drop --num-cpus or --address"
        )
    if address != "auto":
        _probe(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as exc:  # broad, told as a UserError: ConnectionError, RuntimeError, ValueError, Ray's own
        raise UserError(
            _connection_error(address, exc), hint="check --address / RAY_ADDRESS, or run without it"
        ) from None
    return True


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    from ray._private import ray_constants

    old_env, old_flag = os.environ.get(_LOOPBACK_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_LOOPBACK_ENV] = "0"  # for the processes ray.init starts
    ray_constants.ENABLE_RAY_CLUSTER = False  # for this one, whose ray module read it at import
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old_flag
        if old_env is None:
            os.environ.pop(_LOOPBACK_ENV, None)
        else:
            os.environ[_LOOPBACK_ENV] = old_env


def _descendants(root: int) -> set[int]:
    """The processes below ``root``, read from /proc (empty where there is none)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return set()
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack += children.get(pid, [])
    return found


def _command_line(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _undo_failed_start(before: set[int]) -> None:
    """After a failed ``ray.init``: reset this process's Ray state and kill, by process id, every
    process the attempt started (its GCS, raylet, agents, workers), which Ray leaves running when
    its start fails before ``ray.init`` returns."""
    import ray

    with contextlib.suppress(Exception):
        ray.shutdown()
    started = {pid for pid in _descendants(os.getpid()) - before if b"ray" in _command_line(pid)}
    for pid in started:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for pid in started:  # reap this process's own children (the rest are their parents' to reap)
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)


def check_address(address: str | None) -> None:
    """Before a run creates anything: the cluster it is to join (``--address`` or
    ``$RAY_ADDRESS``) answers, and answers as Ray does; nothing to check for a private Ray
    or ``auto``."""
    address = resolve_address(address)
    if address is not None and address != "auto":
        _probe(address)


_ADDRESS_HINT = "check the host and port (a head's GCS listens on 6379 by default, Ray Client on 10001)"
# An HTTP/2 client preface and an empty SETTINGS frame: Ray's GCS and Ray Client servers speak
# gRPC, whose HTTP/2 server answers with a SETTINGS frame (type 4) of its own.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _probe(address: str) -> None:
    """Fail within seconds when nothing answers at ``address`` (host:port or ray://host:port),
    or when what answers is not a gRPC server (Ray's GCS and Ray Client are): one line with
    what was found, never Ray's own retries (20 s of log lines)."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"Ray address {address!r} is not host:port, ray://host:port or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S) as conn:
            reply = b"" if os.environ.get("RAY_USE_TLS", "0") not in ("0", "") else _first_bytes(conn)
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise UserError(
            f"cannot reach the Ray cluster at {address}: {reason} (tried for {PROBE_TIMEOUT_S:g} s)", hint=_ADDRESS_HINT
        ) from None
    if reply is not None and reply and not (len(reply) >= 4 and reply[3] == 4):
        shown = reply.split(b"\r\n", 1)[0][:60].decode("ascii", "replace")
        raise UserError(
            f"cannot connect to the Ray cluster at {address}: something answers there, but not Ray "
            f"(it replied {shown!r} to a gRPC handshake)",
            hint=_ADDRESS_HINT,
        )


def _first_bytes(conn: socket.socket) -> bytes | None:
    """What a server replies to an HTTP/2 preface (up to 64 bytes); None when it says nothing
    within the probe's time (left for Ray to judge)."""
    conn.settimeout(PROBE_TIMEOUT_S)
    try:
        conn.sendall(_H2_PREFACE)
        data = conn.recv(64)
    except TimeoutError:
        return None
    except OSError:
        return b"(the connection was closed)"
    return data or b"(the connection was closed)"


def _connection_error(address: str, exc: Exception) -> str:
    """One line that says why joining failed (Ray's own message is many)."""
    text = str(exc)
    first = (text.strip().splitlines() or [type(exc).__name__])[0]
    lowered = text.lower()
    if "token" in lowered or "unauthenticated" in lowered or "auth" in lowered:
        return (
            f"the Ray cluster at {address} refused the connection: it uses token authentication "
            "(set RAY_AUTH_MODE=token and give its token, e.g. RAY_AUTH_TOKEN_PATH=<the head's token file>)"
        )
    if "version" in lowered and "mismatch" in lowered:
        return f"the Ray cluster at {address} runs another Ray or Python version: {first}"
    return f"cannot connect to the Ray cluster at {address}: {first}"
