"""Ray's dashboard agent as a minimal Ray install runs it: no agent modules.

A private restorebench head starts its raylet's dashboard agent through this script
(``python minimal_agent.py <Ray's agent.py> <its arguments>``; see
:func:`restorebench.run.ray_runtime._lean_hooks`), which imports nothing of restorebench.
Ray already starts that agent with ``--minimal`` (no gRPC or HTTP server), but where the
dashboard's packages are installed the agent still imports every module under
``ray.dashboard.modules`` and runs each (metrics reporter, log, job, event and health agents)
with nothing to serve them to: 0.8 s of the raylet's wait for its agents on 2 cores, and the
reporter's polling during the run. Here the agent keeps only the modules Ray marks minimal,
as it does on a ``pip install ray`` without them; Ray 2.60 marks none. Everything else is
Ray's own agent, run as its script; and where this Ray's agent modules cannot be read
as this script expects (a Ray that renamed or changed them), the agent loads them all, as
Ray's own agent does, and says so on its standard error (in the session's ``logs/``:
``raylet.err``, or ``dashboard_agent.err`` once the agent has redirected its output).
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any


def minimal_modules(module_type: type) -> list[Any]:
    """The already imported, enabled subclasses of ``module_type`` that Ray marks minimal
    (Ray's ``get_all_modules`` imports all of them first, then drops the others)."""
    return [
        cls
        for cls in module_type.__subclasses__()
        if getattr(cls, "__ray_dashboard_module_enable__", True) and cls.is_minimal_module()
    ]


def _keep_only_minimal_modules() -> None:
    """Replace Ray's ``get_all_modules`` by :func:`minimal_modules`, which falls back to Ray's
    own (every module) where it fails; a Ray without that function is left as it is."""
    try:
        import ray.dashboard.utils as dashboard_utils

        every_module = dashboard_utils.get_all_modules
    except (ImportError, AttributeError) as exc:
        _say(f"Ray's agent runs with all its modules: {type(exc).__name__}: {exc}")
        return

    def only_minimal(module_type: type, *args: Any, **kwargs: Any) -> list[Any]:
        if not args and not kwargs:  # Ray's call as this script knows it
            try:
                return minimal_modules(module_type)
            except Exception as exc:  # broad: Ray internals changed; said, and Ray's own list is used
                _say(f"Ray's agent runs with all its modules: {type(exc).__name__}: {exc}")
        return every_module(module_type, *args, **kwargs)

    dashboard_utils.get_all_modules = only_minimal


def _say(text: str) -> None:
    print(f"restorebench minimal_agent: {text}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    """Run the agent script ``argv[1]`` with ``argv[2:]`` as its arguments."""
    if len(argv) < 2:
        raise SystemExit("usage: python minimal_agent.py AGENT_SCRIPT [ARGS...]")
    script = argv[1]
    # as `python agent.py` would have it; it was this folder, whose modules must not shadow others
    sys.path[0] = os.path.dirname(script)
    _keep_only_minimal_modules()
    sys.argv = [script, *argv[2:]]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv)
