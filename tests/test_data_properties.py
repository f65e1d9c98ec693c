"""Property-based tests of the Sonar loader: any corruption gives one clear error.

Hypothesis draws many damaged variants of the real file.  Whatever the damage,
``load_sonar`` must raise ``SonarDataError`` (never another exception type, and
never load silently) with a message that names the file and says what is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers.data import (
    DEFAULT_SONAR_PATH,
    N_FEATURES,
    N_SAMPLES,
    SonarDataError,
    load_sonar,
)

REFERENCE = DEFAULT_SONAR_PATH.read_text()
ROWS = REFERENCE.splitlines()
CELLS = [row.split(",") for row in ROWS]
ASCII_NUMBER = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)


def is_valid_value(text: str) -> bool:
    """True for text a correct loader must accept as a feature value."""
    return bool(ASCII_NUMBER.fullmatch(text)) and 0.0 <= float(text) <= 1.0


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

row_index = st.integers(0, N_SAMPLES - 1)
feature_index = st.integers(0, N_FEATURES - 1)
bad_numbers = st.one_of(
    st.sampled_from(
        [
            "",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "1e400",
            "abc",
            " 0.5",
            "0.5 ",
            "1.5",
            "-0.1",
            "2",
            "0.5.1",
            "0,5",
            "M",
            "R",
            "\t0.1",
            "１",
        ]
    ),
    st.text(min_size=1, max_size=8).filter(
        lambda s: not is_valid_value(s) and not set(s) & set(",\n\r\x00")
    ),
)
# NUL bytes are reported for the whole file ("binary data"), not per row;
# test_garbage_bytes_inside_the_file covers them.
bad_labels = st.text(max_size=4).filter(
    lambda s: s not in ("M", "R") and not set(s) & set(",\n\r\x00")
)


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "sonar-copy.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def join(cells) -> str:
    return "\n".join(",".join(row) for row in cells) + "\n"


def assert_clear_error(path: Path) -> str:
    try:
        load_sonar(path)
    except SonarDataError as error:
        message = str(error)
        assert message.startswith(f"{path}: "), message
        problem = message[len(f"{path}: ") :]
        assert len(problem) > 10, message
        return problem
    except Exception as error:  # noqa: BLE001  (the point: nothing else may escape)
        pytest.fail(f"{type(error).__name__} escaped the loader: {error}")
    pytest.fail("a corrupted file loaded without error")


@SETTINGS
@given(row=row_index, col=feature_index, value=bad_numbers)
def test_bad_numeric_cell(tmp_path, row, col, value):
    cells = [list(r) for r in CELLS]
    cells[row][col] = value
    problem = assert_clear_error(write(tmp_path, join(cells)))
    assert f"row {row + 1}" in problem


@SETTINGS
@given(row=row_index, label=bad_labels)
def test_unknown_label(tmp_path, row, label):
    cells = [list(r) for r in CELLS]
    cells[row][-1] = label
    problem = assert_clear_error(write(tmp_path, join(cells)))
    assert f"row {row + 1}" in problem


@SETTINGS
@given(row=row_index, col=st.integers(0, N_FEATURES), extra=st.booleans())
def test_missing_or_extra_column(tmp_path, row, col, extra):
    cells = [list(r) for r in CELLS]
    if extra:
        cells[row].insert(col, "0.5000")
    else:
        del cells[row][col]
    problem = assert_clear_error(write(tmp_path, join(cells)))
    assert f"row {row + 1}" in problem and "expected 61" in problem


@SETTINGS
@given(cut=st.integers(0, len(REFERENCE) - 2))
def test_truncated_file(tmp_path, cut):
    assert_clear_error(write(tmp_path, REFERENCE[:cut]))


@SETTINGS
@given(
    drop=st.sets(row_index, min_size=1, max_size=5), duplicate=st.booleans()
)
def test_missing_or_duplicated_rows(tmp_path, drop, duplicate):
    rows = [r for i, r in enumerate(ROWS) if i not in drop]
    if duplicate:
        rows = ROWS + [ROWS[i] for i in sorted(drop)]
    problem = assert_clear_error(write(tmp_path, "\n".join(rows) + "\n"))
    assert "208" in problem


@SETTINGS
@given(garbage=st.binary(min_size=1, max_size=4096))
def test_binary_garbage(tmp_path, garbage):
    assert_clear_error(write(tmp_path, garbage))


@SETTINGS
@given(
    row=row_index,
    col=feature_index,
    garbage=st.binary(min_size=1, max_size=8),
)
def test_garbage_bytes_inside_the_file(tmp_path, row, col, garbage):
    cells = [list(r) for r in CELLS]
    cells[row][col] = "\x00"  # placeholder replaced by raw bytes below
    raw = join(cells).encode().replace(b"\x00", garbage, 1)
    assume(
        garbage.decode("utf-8", errors="replace") != ROWS[row].split(",")[col]
    )
    assume(not is_valid_value(garbage.decode("latin-1")))
    assert_clear_error(write(tmp_path, raw))


@SETTINGS
@given(
    row=row_index,
    col=feature_index,
    value=st.floats(0, 1).map(lambda v: f"{v:.4f}"),
)
def test_valid_but_altered_copy_fails_only_the_checksum(
    tmp_path, row, col, value
):
    assume(value != CELLS[row][col])
    cells = [list(r) for r in CELLS]
    cells[row][col] = value
    path = write(tmp_path, join(cells))
    data = load_sonar(path)  # structurally valid: loads without verification
    assert data.X[row, col] == float(value)
    with pytest.raises(SonarDataError, match="checksum") as caught:
        load_sonar(path, verify_checksum=True)
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: p.mkdir(), id="directory"),
        pytest.param(lambda p: p.write_text(""), id="empty"),
        pytest.param(lambda p: None, id="missing"),
    ],
)
def test_not_a_usable_file(tmp_path, make):
    path = tmp_path / "sonar-copy.csv"
    make(path)
    assert_clear_error(path)
