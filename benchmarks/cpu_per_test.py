"""Where the processor time of a test run goes: a pytest plugin.

    .venv/bin/python -m pytest -p benchmarks.cpu_per_test tests --ignore=tests/browser \\
        -n auto --dist loadfile
    .venv/bin/python -m pytest -p benchmarks.cpu_per_test --nbval chapters/ \\
        -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder

``make test`` keeps both cores busy from start to end (``vmstat`` shows 4%
idle over a fresh clone's run), so its wall-clock time is its processor time
divided by two: only less work makes it faster.  This plugin says which
work.  For every test (a notebook cell, under nbval) it records the wall
clock, the processor time of the pytest process that ran it, and that of
the child processes it started and waited for (``subprocess.run``: fresh
interpreters, nbval's kernels).  At the end it prints the totals per file,
largest processor time first, and the tests that cost most.

Not counted: processes that outlive the test that started them, such as
joblib's reusable worker pool and Dask's workers, and Jupyter kernels while
nbval keeps them running (a notebook's cells run in its kernel, so under
nbval the wall clock per notebook is the number to read; with one kernel per
core it is also the processor time).  Linux's process accounting counts
everything (``apt-get install acct``, ``accton FILE`` before the run,
``dump-acct FILE`` after it).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

_RECORDS = "CPU_PER_TEST_RECORDS"  # the file every process appends to
_started: dict[str, tuple[float, float, float]] = {}


def _times() -> tuple[float, float]:
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


def pytest_configure(config) -> None:
    if os.environ.get(_RECORDS) is None:  # the controlling process
        handle, path = tempfile.mkstemp(
            prefix="cpu-per-test-", suffix=".jsonl"
        )
        os.close(handle)
        os.environ[_RECORDS] = path  # xdist's workers inherit it


def pytest_runtest_setup(item) -> None:
    _started[item.nodeid] = (time.perf_counter(), *_times())


def pytest_runtest_logfinish(nodeid, location) -> None:
    if nodeid not in _started:
        return
    wall0, own0, children0 = _started.pop(nodeid)
    own1, children1 = _times()
    record = {
        "test": nodeid,
        "wall": time.perf_counter() - wall0,
        "own": own1 - own0,
        "children": children1 - children0,
    }
    with open(os.environ[_RECORDS], "a") as f:
        f.write(json.dumps(record) + "\n")


def pytest_terminal_summary(terminalreporter) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    path = Path(os.environ[_RECORDS])
    records = [json.loads(line) for line in path.read_text().splitlines()]
    path.unlink()
    write = terminalreporter.write_line
    per_file = defaultdict(lambda: [0.0, 0.0, 0.0])
    for r in records:
        totals = per_file[r["test"].split("::")[0]]
        totals[0] += r["wall"]
        totals[1] += r["own"]
        totals[2] += r["children"]
    terminalreporter.section("processor time per file (seconds)")
    write(f"{'wall':>8} {'pytest':>8} {'children':>8}  file")
    rows = sorted(per_file.items(), key=lambda kv: -(kv[1][1] + kv[1][2]))
    rows.append(("all", [sum(column) for column in zip(*per_file.values())]))
    for name, (wall, own, children) in rows:
        write(f"{wall:8.1f} {own:8.1f} {children:8.1f}  {name}")
    terminalreporter.section("the 20 tests that cost most (seconds)")
    write(f"{'wall':>8} {'pytest':>8} {'children':>8}  test")
    for r in sorted(records, key=lambda r: -(r["own"] + r["children"]))[:20]:
        write(
            f"{r['wall']:8.1f} {r['own']:8.1f} {r['children']:8.1f}  {r['test']}"
        )
