"""Re-execute notebooks in place, each in a fresh kernel, top to bottom.

Usage: python tools/execute_notebooks.py chapters/*.ipynb

This is how every stored output in the book is produced (``make execute``),
so outputs are regenerated the same way every time: a new kernel of this
environment's Python, the notebook's own folder as working directory, cells
run in order, and the run stops at the first error (nothing is saved then).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

PROGRESS_SECONDS = 3.0  # cells that take longer are reported as they finish


def execute(path: Path, timeout: int) -> float:
    notebook = nbformat.read(path, as_version=4)
    # A stale widget state or kernel name must not survive re-execution.
    notebook.metadata.pop("widgets", None)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    n_code = sum(cell.cell_type == "code" for cell in notebook.cells)
    started = {}

    def on_start(cell, cell_index, **_):
        started[cell_index] = time.perf_counter()

    def on_executed(cell, cell_index, **_):
        # Progress as it goes: every code cell that took a while, with its first line.
        seconds = time.perf_counter() - started.pop(
            cell_index, time.perf_counter()
        )
        number = sum(
            c.cell_type == "code" for c in notebook.cells[: cell_index + 1]
        )
        if seconds >= PROGRESS_SECONDS:
            first = next(
                (
                    line
                    for line in cell.source.splitlines()
                    if line.strip() and not line.startswith("#")
                ),
                "",
            )
            print(
                f"  code cell {number:>2} of {n_code}: {seconds:6.1f} s  {first[:60]}",
                flush=True,
            )

    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_start=on_start,
        on_cell_executed=on_executed,
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nbformat.write(notebook, path)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument(
        "--timeout", type=int, default=1200, help="seconds allowed per cell"
    )
    args = parser.parse_args(argv)
    for path in args.notebooks:
        if not path.is_file():
            print(f"{path}: no such notebook", file=sys.stderr)
            return 2
    total = 0.0
    for number, path in enumerate(args.notebooks, start=1):
        print(
            f"[{number}/{len(args.notebooks)}] executing {path} ...",
            flush=True,
        )
        seconds = execute(path, args.timeout)
        total += seconds
        print(
            f"  done in {seconds:.1f} s ({total / 60:.1f} min so far)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
