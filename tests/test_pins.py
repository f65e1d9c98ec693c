"""requirements.txt (what `make` installs) and environment.yml (conda,
Binder) pin the same versions."""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._\[\]-]*)==(\S+)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(lines) -> dict[str, str]:
    pins = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = PIN.match(line)
        if not match:
            raise AssertionError(f"not an exact pin: {raw.strip()!r}")
        name = _canonical(match.group(1))
        if name in pins:
            raise AssertionError(f"{name} is pinned twice")
        pins[name] = match.group(2)
    return pins


def requirements_pins() -> dict[str, str]:
    return parse_pins((ROOT / "requirements.txt").read_text().splitlines())


def environment_pins() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.strip() == "- pip:"
    )
    pip_lines = [
        line.strip()[2:]
        for line in lines[start + 1 :]
        if line.strip().startswith("- ")
    ]
    return parse_pins(pip_lines)


def test_environment_yml_repeats_requirements_exactly():
    assert environment_pins() == requirements_pins()


def test_parse_pins_rejects_ranges_and_duplicates():
    with pytest.raises(AssertionError, match="not an exact pin"):
        parse_pins(["numpy>=2"])
    with pytest.raises(AssertionError, match="pinned twice"):
        parse_pins(["numpy==2.0", "NumPy==2.0"])


def test_environment_yml_pins_a_python_version():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*- python=3\.1[1-9]\s*$", text, re.M)


@pytest.mark.parametrize("name, pinned", sorted(requirements_pins().items()))
def test_installed_version_is_the_pinned_one(name, pinned):
    try:
        installed = version(name)
    except PackageNotFoundError:
        pytest.fail(f"{name} is pinned but not installed; run `make install`")
    assert installed == pinned, (
        f"{name}: installed {installed}, pinned {pinned}"
    )


def test_WORKAROUND_nbformat_does_not_load_rfc3987_syntax():
    """jsonschema is pinned before 4.25 (requirements.txt): from 4.25 on, importing it
    imports rfc3987-syntax, which builds its parsers at import (1.2 s in every process
    that loads nbformat, every pytest run among them, through nbval).

    IF THIS TEST FAILS, the installed jsonschema imports rfc3987_syntax again: check
    the pin, or, if upstream now imports it lazily, drop the pin.
    """
    import nbformat.validator  # noqa: F401  (pytest has usually loaded it already)

    assert "rfc3987_syntax" not in sys.modules
