"""Run every benchmark in bench/ and print one table of their figures.

Each benchmark is a script here exposing ``rows(quick=...)`` (files named
``_*.py`` are helpers). Every figure is measured against a baseline measured
in the same run; the table gives both medians, the result (a ratio, or a
time), the range over the rounds, and the target. The machine is printed
above it: figures from different machines do not compare.

    python bench/run.py [--quick] [--only NAME ...]

``--quick`` is a smoke run (small sizes, one round: the figures mean little).
Exits 1 if any figure misses its target.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the scripts import each other by name, as when run alone
    sys.path.insert(0, str(HERE))

from _bench import report  # noqa: E402 - needs the path above

if TYPE_CHECKING:
    from _bench import Row

ORDER = (
    "startup",
    "actions",
    "spends",
    "llm",
    "tools",
    "memory",
    "ledger",
    "journal",
    "report",
    "status",
    "store",
)
"""The usual order of the table; benchmarks not named here follow, by name."""


NOT_BENCHMARKS = frozenset({"run", "soak"})
"""Scripts in bench/ that measure no figure: this one, and the kill soak."""


def benchmarks() -> list[str]:
    """The names of the benchmark scripts in bench/."""
    found = {path.stem for path in HERE.glob("*.py") if not path.stem.startswith("_")}
    found -= NOT_BENCHMARKS
    return [name for name in ORDER if name in found] + sorted(found - set(ORDER))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes, one round")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", choices=benchmarks(), help="run only these"
    )
    args = parser.parse_args()

    rows: list[Row] = []
    for name in args.only or benchmarks():
        print(f"running {name}...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        module = importlib.import_module(name)
        rows += module.rows(quick=args.quick)
        print(f"  {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    if args.quick:
        print("(--quick: a smoke run; the figures mean little)")
    return report(rows)


if __name__ == "__main__":
    sys.exit(main())
