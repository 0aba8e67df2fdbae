"""Run the benchmarks: ``python -m benchmarks [NAME ...] [--quick] [--threads N]``.

Each module ``benchmarks/bench_<name>.py`` exposes ``TITLE`` and ``run(quick: bool) -> list[Comparison]``. The
tables are printed and written to ``outputs/bench/<name>.md``; measured figures worth keeping go into
``benchmarks/RESULTS.md`` by hand, with the machine line printed here.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

from benchmarks.harness import machine_description, markdown_table, set_threads


def main() -> None:
    available = sorted(
        m.name[len("bench_") :]
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(available)})")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes (a smoke run)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default %(default)s)")
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/bench"))
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(available))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available}")
    set_threads(args.threads)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    print(f"Machine: {machine_description()}\n")
    for name in args.names or available:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        table = markdown_table(module.run(quick=args.quick))
        text = f"## {module.TITLE}\n\n{machine_description()}\n\n{table}\n"
        print(text)
        (args.output_dir / f"{name}.md").write_text(text)


if __name__ == "__main__":
    main()
