#!/usr/bin/env python3
"""Run benchmarks: ``python bench/run.py [NAME...] [--json]``.

Each benchmark is a module ``bench/bench_<name>.py`` with a ``run() -> dict`` that
returns named figures. Figures that compare to a reference are ratios measured in the
same run. With no NAME every benchmark runs. ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks (default: all of {available()})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}",
            file=sys.stderr,
        )
        return 1
    sys.path.insert(0, str(HERE))
    figures: dict[str, object] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
    }
    for name in names:
        started = time.perf_counter()
        result = importlib.import_module(f"bench_{name}").run()
        figures.update(result)
        figures[f"{name}_bench_s"] = round(time.perf_counter() - started, 2)
        if not args.json:
            for key, value in result.items():
                print(f"{key:40} {value}")
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
