"""The book runs without a network.

Unit tests: ``helpers`` is exercised under pytest-socket, which disables
Python sockets for this whole module.  Notebooks: ``pytest --nbval chapters/``
(what ``make test-notebooks`` runs) puts ``tests/offline`` on PYTHONPATH
(chapters/conftest.py), whose ``sitecustomize`` refuses
any connection or name lookup beyond this machine in the kernels and their
joblib workers; the tests below check that guard itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

OFFLINE = Path(__file__).resolve().parent / "offline"


@pytest.mark.disable_socket
@pytest.mark.filterwarnings("ignore:A test tried to use socket.socket")
def test_helpers_train_and_cross_validate_without_sockets():
    import socket

    from helpers import (
        build_hidden_dropout,
        cross_validate_model,
        load_sonar,
        make_classifier,
    )

    with pytest.raises(Exception, match="socket"):
        socket.socket()  # pytest-socket is active: a socket would fail
    data = load_sonar()
    result = cross_validate_model(
        make_classifier(build_hidden_dropout, epochs=2),
        data.X,
        data.y,
        n_splits=3,
        seed=0,
        n_jobs=1,
    )
    assert result.scores.shape == (1, 3)
    from helpers.environment import environment_record

    assert environment_record(0)


def run_guarded(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(OFFLINE))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_guard_is_loaded_through_pythonpath():
    out = run_guarded(
        "import socket; print(getattr(socket, 'OFFLINE_GUARD', False))"
    )
    assert out.stdout.strip() == "True", out.stderr


@pytest.mark.parametrize(
    "code",
    [
        "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)",
        "import socket; socket.getaddrinfo('example.org', 443)",
        "import urllib.request; urllib.request.urlopen('http://example.org', timeout=1)",
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        "s.sendto(b'x', ('192.0.2.1', 53))",
    ],
    ids=["tcp", "dns", "urllib", "udp"],
)
def test_guard_refuses_remote_access(code):
    out = run_guarded(code)
    assert out.returncode != 0
    assert (
        "OfflineError" in out.stderr and "must run offline" in out.stderr
    ), out.stderr


def test_guard_allows_loopback():
    out = run_guarded(
        """
        import socket
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
        client = socket.create_connection(server.getsockname(), timeout=5)
        client.close(); server.close()
        print(socket.getaddrinfo("localhost", 80)[0][0])
        """
    )
    assert out.returncode == 0, out.stderr


def test_guard_reaches_kernels_and_their_workers(tmp_path, monkeypatch):
    """What make test-notebooks does: a kernel started with the guard on PYTHONPATH,
    in another working directory, and joblib workers started from that kernel."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("PYTHONPATH", str(OFFLINE))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import socket\n"
            "from joblib import Parallel, delayed\n"
            "def guarded(_):\n"
            "    import socket\n"
            "    return getattr(socket, 'OFFLINE_GUARD', False)\n"
            "print(getattr(socket, 'OFFLINE_GUARD', False),\n"
            "      Parallel(n_jobs=2)(delayed(guarded)(i) for i in range(2)))"
        )
    ]
    NotebookClient(
        notebook,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    assert notebook.cells[0].outputs[0]["text"].strip() == "True [True, True]"


def test_the_readme_command_runs_notebooks_in_this_environment_with_the_guard(
    tmp_path,
):
    """`pytest --nbval chapters/`, with no other option and no PYTHONPATH, as the README says.

    chapters/conftest.py must supply what `make test-notebooks` used to pass on
    the command line: this environment's Python as the kernel (the notebook
    names a kernel that does not exist), the sanitize file and the guard.
    """
    import shutil

    import nbformat

    root = OFFLINE.parents[1]
    (tmp_path / "chapters").mkdir()
    (tmp_path / "tests").mkdir()
    shutil.copy(
        root / "chapters" / "conftest.py",
        tmp_path / "chapters" / "conftest.py",
    )
    shutil.copy(root / "requirements.txt", tmp_path / "requirements.txt")
    shutil.copy(
        root / "tests" / "nbval_sanitize.cfg",
        tmp_path / "tests" / "nbval_sanitize.cfg",
    )
    shutil.copytree(OFFLINE, tmp_path / "tests" / "offline")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import socket, sys\n"
            f"print(getattr(socket, 'OFFLINE_GUARD', False), sys.prefix == {sys.prefix!r})",
            execution_count=1,
            outputs=[
                nbformat.v4.new_output(
                    "stream", name="stdout", text="True True\n"
                )
            ],
        )
    ]
    notebook.metadata["kernelspec"] = {
        "name": "no-such-kernel",
        "display_name": "x",
        "language": "python",
    }
    nbformat.write(notebook, tmp_path / "chapters" / "probe.ipynb")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "-p",
            "no:cacheprovider",
            "chapters/",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert "1 passed" in process.stdout, process.stdout + process.stderr
