"""`make lab` starts the notebooks with this environment's Python, whatever
kernels the reader has.

A reader's own ``python3`` kernel in ``~/.local/share/jupyter`` is searched
before the environment's when ``JUPYTER_PREFER_ENV_PATH=0``; the test plants
one (pointing at another interpreter) in a scratch home folder and asks the
very recipe `make lab` runs which ``python3`` kernel Jupyter would start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_make_lab_uses_the_environments_kernel_over_the_readers_own(tmp_path):
    own = (
        tmp_path
        / "home"
        / ".local"
        / "share"
        / "jupyter"
        / "kernels"
        / "python3"
    )
    own.mkdir(parents=True)
    (own / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    "/usr/bin/python3",
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "the reader's own Python",
                "language": "python",
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    # jupyter_core's documented switch that makes the user's folders win over the
    # environment's; readers set it (or a JUPYTER_PATH) to share kernels.
    env["JUPYTER_PREFER_ENV_PATH"] = "0"
    env["HOME"] = str(tmp_path / "home")
    env["XDG_DATA_HOME"] = str(tmp_path / "home" / ".local" / "share")

    def python3_kernel(command):
        process = subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert process.returncode == 0, process.stdout + process.stderr
        listing = process.stdout[process.stdout.index("{") :]
        return json.loads(listing)["kernelspecs"]["python3"]

    # Without the recipe's setting, Jupyter would pick the reader's kernel: the
    # situation the recipe exists for (so this test can fail).
    plain = python3_kernel(
        [sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"]
    )
    assert plain["spec"]["argv"][0] == "/usr/bin/python3"

    spec = python3_kernel(
        ["make", "-s", "lab", "LAB_COMMAND=kernelspec list --json"]
    )
    assert Path(spec["resource_dir"]).is_relative_to(Path(sys.prefix))
    assert (
        Path(spec["spec"]["argv"][0]).resolve()
        == Path(sys.executable).resolve()
    )
