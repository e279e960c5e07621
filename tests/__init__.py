"""The tests mirror the source tree: core/ data/ score/ run/ results/ neural/ track/ report/ commands/ tasks/<task>/ e2e/ perf/."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
