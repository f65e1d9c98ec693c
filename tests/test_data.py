"""Tests for helpers.data: loading and validating data/sonar.csv.

Malformed inputs are built by editing the text of the real file and writing
it to ``tmp_path``, so each test changes exactly one thing.
"""

from __future__ import annotations

import hashlib
import os
import pathlib

import numpy as np
import pandas as pd
import pytest

import helpers.data as data_module
from helpers.data import (
    DEFAULT_SONAR_PATH,
    LABEL_NAMES,
    N_FEATURES,
    N_SAMPLES,
    SONAR_SHA256,
    DigitsDataError,
    SonarData,
    SonarDataError,
    add_noise_columns,
    check_digits,
    load_digits_data,
    load_sonar,
)

REAL_TEXT = DEFAULT_SONAR_PATH.read_bytes().decode("ascii")


def real_rows() -> list[list[str]]:
    """The real file as a list of rows of cell strings (a fresh copy)."""
    return [line.split(",") for line in REAL_TEXT.splitlines()]


def join(rows: list[list[str]], newline: str = "\n") -> str:
    return "".join(",".join(row) + newline for row in rows)


def write(
    tmp_path: pathlib.Path, text: str, name: str = "sonar.csv"
) -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def with_cell(
    tmp_path: pathlib.Path, row: int, col: int, value: str
) -> pathlib.Path:
    """Copy of the real file with 1-based (row, col) replaced by ``value``."""
    rows = real_rows()
    rows[row - 1][col - 1] = value
    return write(tmp_path, join(rows))


def problem_of(error: SonarDataError, path) -> str:
    """The part of the message after the path, which it must start with.

    Fragments are looked for only here because tmp_path contains the test's
    name, which could otherwise supply words such as "checksum".
    """
    message = str(error)
    assert message.startswith(f"{path}: ")
    return message[len(f"{path}: ") :]


def assert_load_fails(path, *fragments: str, **kwargs) -> SonarDataError:
    """Assert load_sonar(path) fails naming path and each fragment."""
    with pytest.raises(SonarDataError) as info:
        load_sonar(path, **kwargs)
    problem = problem_of(info.value, path)
    for fragment in fragments:
        assert fragment in problem
    return info.value


# --- the shipped file -------------------------------------------------------


def test_shipped_file_shape_and_dtypes():
    data = load_sonar()
    assert isinstance(data, SonarData)
    assert data.X.shape == (N_SAMPLES, N_FEATURES) == (208, 60)
    assert data.y.shape == (208,)
    assert data.X.dtype == np.float64
    assert data.y.dtype == np.int64


def test_shipped_file_labels_and_counts():
    data = load_sonar()
    assert data.label_names == LABEL_NAMES == ("M", "R")
    assert set(np.unique(data.y)) == {0, 1}
    assert int((data.y == 0).sum()) == 111  # M
    assert int((data.y == 1).sum()) == 97  # R


def test_shipped_file_first_row():
    data = load_sonar()
    assert data.X[0, 0] == 0.0200
    assert data.X[0, -1] == 0.0032
    assert data.y[0] == 1  # the first row is a rock, "R"


def test_shipped_file_metadata():
    data = load_sonar()
    assert data.path == DEFAULT_SONAR_PATH
    assert data.sha256 == SONAR_SHA256
    assert DEFAULT_SONAR_PATH.is_absolute()
    assert DEFAULT_SONAR_PATH.parts[-2:] == ("data", "sonar.csv")


def test_checksum_constant_matches_file_bytes():
    digest = hashlib.sha256(DEFAULT_SONAR_PATH.read_bytes()).hexdigest()
    assert digest == SONAR_SHA256


def test_values_match_independent_parser():
    frame = pd.read_csv(DEFAULT_SONAR_PATH, header=None)
    data = load_sonar()
    np.testing.assert_array_equal(
        data.X, frame.iloc[:, :60].to_numpy(dtype=np.float64)
    )
    expected_y = frame.iloc[:, 60].map({"M": 0, "R": 1}).to_numpy()
    np.testing.assert_array_equal(data.y, expected_y)


def test_encoding_matches_sklearn_label_encoder():
    from sklearn.preprocessing import LabelEncoder

    labels = [row[-1] for row in real_rows()]
    encoder = LabelEncoder().fit(labels)
    assert tuple(encoder.classes_) == LABEL_NAMES
    np.testing.assert_array_equal(load_sonar().y, encoder.transform(labels))


def test_each_call_returns_fresh_arrays():
    first = load_sonar()
    first.X[0, 0] = 0.5
    assert load_sonar().X[0, 0] == 0.0200


def test_repr_is_short():
    text = repr(load_sonar())
    assert "(208, 60)" in text
    assert len(text) < 400


# --- user copies ------------------------------------------------------------


@pytest.mark.parametrize("as_str", [False, True])
def test_identical_copy_loads(tmp_path, as_str):
    path = write(tmp_path, REAL_TEXT)
    data = load_sonar(str(path) if as_str else path, verify_checksum=True)
    reference = load_sonar()
    np.testing.assert_array_equal(data.X, reference.X)
    np.testing.assert_array_equal(data.y, reference.y)
    assert data.sha256 == SONAR_SHA256
    assert data.path == path


def altered_copy(tmp_path):
    """Valid but different from the reference: one value changed."""
    return with_cell(tmp_path, 5, 7, "0.9999")


def test_altered_copy_loads_without_checksum(tmp_path):
    path = altered_copy(tmp_path)
    data = load_sonar(path)
    assert data.X[4, 6] == 0.9999
    assert data.sha256 != SONAR_SHA256
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_altered_copy_fails_checksum_when_asked(tmp_path):
    path = altered_copy(tmp_path)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    assert_load_fails(
        path, "checksum", actual, SONAR_SHA256, verify_checksum=True
    )


def test_crlf_line_endings_accepted(tmp_path):
    path = write(tmp_path, join(real_rows(), newline="\r\n"))
    data = load_sonar(path)
    np.testing.assert_array_equal(data.X, load_sonar().X)
    np.testing.assert_array_equal(data.y, load_sonar().y)


def test_crlf_copy_fails_checksum(tmp_path):
    path = write(tmp_path, join(real_rows(), newline="\r\n"))
    assert_load_fails(path, "checksum", verify_checksum=True)


def test_missing_final_newline_accepted(tmp_path):
    path = write(tmp_path, REAL_TEXT.rstrip("\n"))
    assert load_sonar(path).X.shape == (208, 60)


def test_extra_blank_lines_at_end_accepted(tmp_path):
    path = write(tmp_path, REAL_TEXT + "\n\n")
    assert load_sonar(path).X.shape == (208, 60)


def test_scientific_notation_accepted(tmp_path):
    path = with_cell(tmp_path, 2, 3, "1e-3")
    assert load_sonar(path).X[1, 2] == 0.001


# --- the shipped path, redirected to a damaged copy --------------------------


def test_default_path_checksum_mismatch(tmp_path, monkeypatch):
    path = altered_copy(tmp_path)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(data_module, "DEFAULT_SONAR_PATH", path)
    with pytest.raises(SonarDataError) as info:
        load_sonar()
    problem = problem_of(info.value, path)
    assert "checksum" in problem
    assert actual in problem
    assert SONAR_SHA256 in problem


def test_default_path_checksum_can_be_skipped(tmp_path, monkeypatch):
    path = altered_copy(tmp_path)
    monkeypatch.setattr(data_module, "DEFAULT_SONAR_PATH", path)
    assert load_sonar(verify_checksum=False).X[4, 6] == 0.9999


def test_default_path_structure_reported_before_checksum(
    tmp_path, monkeypatch
):
    path = write(tmp_path, join(real_rows()[:-1]))
    monkeypatch.setattr(data_module, "DEFAULT_SONAR_PATH", path)
    with pytest.raises(SonarDataError) as info:
        load_sonar()
    problem = problem_of(info.value, path)
    assert "has 207 rows, expected 208" in problem
    assert "checksum" not in problem


def test_user_path_structure_reported_before_checksum(tmp_path):
    path = with_cell(tmp_path, 9, 4, "abc")
    error = assert_load_fails(path, "row 9, column 4", verify_checksum=True)
    assert "checksum" not in problem_of(error, path)


# --- structural errors ------------------------------------------------------


def test_missing_file(tmp_path):
    assert_load_fails(tmp_path / "nope.csv", "file not found")


def test_directory(tmp_path):
    assert_load_fails(tmp_path, "is a directory")


def test_empty_file(tmp_path):
    assert_load_fails(write(tmp_path, ""), "file is empty")


def test_only_newlines(tmp_path):
    assert_load_fails(write(tmp_path, "\n\n"), "file is empty")


def test_binary_garbage(tmp_path):
    path = tmp_path / "sonar.csv"
    path.write_bytes(bytes([0xFF, 0xFE, 0x80, 0x81]) * 100)
    error = assert_load_fails(path, "not UTF-8 text")
    assert isinstance(error.__cause__, UnicodeDecodeError)


def test_invalid_utf8_inside_text(tmp_path):
    path = tmp_path / "sonar.csv"
    path.write_bytes(
        REAL_TEXT.encode("ascii").replace(b"0.0200", b"0.02\xe900", 1)
    )
    assert_load_fails(path, "not UTF-8 text", "offset 4")


def test_nul_bytes(tmp_path):
    path = tmp_path / "sonar.csv"
    path.write_bytes(b"\x00" * 1000)
    assert_load_fails(path, "NUL byte", "binary")


def test_too_large(tmp_path):
    path = tmp_path / "sonar.csv"
    path.write_bytes(REAL_TEXT.encode("ascii") * 20)
    assert_load_fails(path, "larger than")


def test_truncated_rows(tmp_path):
    assert_load_fails(
        write(tmp_path, join(real_rows()[:207])), "has 207 rows, expected 208"
    )


def test_extra_row(tmp_path):
    rows = real_rows()
    assert_load_fails(
        write(tmp_path, join(rows + [rows[0]])), "has 209 rows, expected 208"
    )


def test_half_written_last_row(tmp_path):
    rows = real_rows()
    rows[-1] = rows[-1][:30]
    assert_load_fails(
        write(tmp_path, join(rows)), "row 208 has 30 values, expected 61"
    )


@pytest.mark.parametrize(
    ("row", "cells", "expected"),
    [
        (17, 59, "row 17 has 59 values, expected 61"),
        (1, 62, "row 1 has 62 values, expected 61"),
    ],
)
def test_wrong_number_of_fields(tmp_path, row, cells, expected):
    rows = real_rows()
    rows[row - 1] = (rows[row - 1][:-1] * 2)[: cells - 1] + [
        rows[row - 1][-1]
    ]
    assert len(rows[row - 1]) == cells
    assert_load_fails(write(tmp_path, join(rows)), expected)


def test_header_line(tmp_path):
    header = [f"V{i}" for i in range(1, 61)] + ["Class"]
    path = write(tmp_path, ",".join(header) + "\n" + REAL_TEXT)
    assert_load_fails(path, "row 1, column 1", "'V1' is not a number")


def test_blank_line_in_middle(tmp_path):
    lines = REAL_TEXT.split("\n")
    lines.insert(4, "")
    assert_load_fails(write(tmp_path, "\n".join(lines)), "row 5 is blank")


def test_empty_cell(tmp_path):
    assert_load_fails(
        with_cell(tmp_path, 3, 12, ""), "row 3, column 12 is empty"
    )


def test_empty_label(tmp_path):
    assert_load_fails(
        with_cell(tmp_path, 3, 61, ""), "row 3, column 61 is empty"
    )


@pytest.mark.parametrize(
    "value", ["abc", "0.0_5", "\uff10.\uff15", "0;5", "'0.5'"]
)
def test_non_numeric_cell(tmp_path, value):
    assert_load_fails(
        with_cell(tmp_path, 3, 12, value),
        "row 3, column 12",
        f"{value!r} is not a number",
    )


@pytest.mark.parametrize(
    "value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e400"]
)
def test_non_finite_cell(tmp_path, value):
    assert_load_fails(
        with_cell(tmp_path, 40, 2, value),
        "row 40, column 2",
        "not a finite number",
    )


@pytest.mark.parametrize("value", [" 0.5", "0.5 ", "\t0.5"])
def test_whitespace_around_value(tmp_path, value):
    assert_load_fails(
        with_cell(tmp_path, 6, 30, value), "row 6, column 30", "whitespace"
    )


@pytest.mark.parametrize("value", ["1.0001", "-0.0001", "2", "1e1"])
def test_value_out_of_range(tmp_path, value):
    assert_load_fails(
        with_cell(tmp_path, 100, 60, value),
        "row 100, column 60",
        f"value {value} is outside [0, 1]",
    )


@pytest.mark.parametrize("value", ["0", "1", "0.0000", "1.0000"])
def test_range_endpoints_accepted(tmp_path, value):
    assert load_sonar(with_cell(tmp_path, 100, 60, value)).X[99, 59] == float(
        value
    )


@pytest.mark.parametrize("label", ["X", "r", "Rock", "0"])
def test_unknown_label(tmp_path, label):
    assert_load_fails(
        with_cell(tmp_path, 50, 61, label),
        "row 50",
        f"label {label!r}",
        "'M' or 'R'",
    )


def test_label_with_whitespace(tmp_path):
    assert_load_fails(
        with_cell(tmp_path, 50, 61, "R "), "row 50, column 61", "whitespace"
    )


def test_only_first_problem_row_is_named(tmp_path):
    rows = real_rows()
    rows[9][0] = "abc"
    rows[19][0] = "def"
    path = write(tmp_path, join(rows))
    error = assert_load_fails(path, "row 10, column 1")
    assert "row 20" not in problem_of(error, path)


# --- unreadable files -------------------------------------------------------


def _fail_open_for(monkeypatch, target: pathlib.Path, exc: OSError) -> None:
    real_open = pathlib.Path.open

    def fake_open(self, *args, **kwargs):
        if self == target:
            raise exc
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", fake_open)


def test_permission_denied_is_wrapped(tmp_path, monkeypatch):
    path = write(tmp_path, REAL_TEXT)
    cause = PermissionError(13, "Permission denied", str(path))
    _fail_open_for(monkeypatch, path, cause)
    error = assert_load_fails(path, "permission denied")
    assert error.__cause__ is cause


def test_other_os_error_is_wrapped(tmp_path, monkeypatch):
    path = write(tmp_path, REAL_TEXT)
    cause = OSError(5, "Input/output error", str(path))
    _fail_open_for(monkeypatch, path, cause)
    error = assert_load_fails(
        path, "cannot read the file", "Input/output error"
    )
    assert error.__cause__ is cause


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="file permissions do not stop root from reading",
)
def test_real_unreadable_file(tmp_path):
    path = write(tmp_path, REAL_TEXT)
    path.chmod(0)
    try:
        assert_load_fails(path, "permission denied")
    finally:
        path.chmod(0o644)


# --- argument types ---------------------------------------------------------


def test_error_is_a_value_error():
    assert issubclass(SonarDataError, ValueError)


@pytest.mark.parametrize(
    "bad", [123, 1.5, b"data/sonar.csv", ["data/sonar.csv"]]
)
def test_bad_path_type(bad):
    with pytest.raises(TypeError, match="path"):
        load_sonar(bad)


@pytest.mark.parametrize("bad", ["yes", 1, 0])
def test_bad_verify_checksum_type(bad):
    with pytest.raises(TypeError, match="verify_checksum"):
        load_sonar(verify_checksum=bad)


def test_altered_user_copy_is_told_how_it_differs(tmp_path):
    rows = DEFAULT_SONAR_PATH.read_text().splitlines()
    cells = rows[16].split(",")
    cells[4] = "0.9999"
    rows[16] = ",".join(cells)
    cells = rows[40].split(",")
    cells[-1] = "M" if cells[-1] == "R" else "R"
    rows[40] = ",".join(cells)
    path = tmp_path / "copy.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(SonarDataError) as caught:
        load_sonar(path, verify_checksum=True)
    message = str(caught.value)
    assert "1 values and 1 labels differ" in message
    assert "row 17, column 5: 0.9999 here" in message
    assert "row 41: label" in message


def test_copy_differing_only_in_line_endings_says_so(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(DEFAULT_SONAR_PATH.read_bytes().replace(b"\n", b"\r\n"))
    with pytest.raises(SonarDataError, match="only the bytes differ"):
        load_sonar(path, verify_checksum=True)


# --------------------------------------------------------------------------- digits images


def test_digits_loader_shapes_and_scaling():
    from sklearn.datasets import load_digits

    data = load_digits_data()
    assert data.X.shape == (1797, 64) and data.X.dtype == np.float64
    assert data.y.shape == (1797,) and data.y.dtype == np.int64
    assert data.X.min() == 0.0 and data.X.max() == 1.0
    bunch = load_digits()
    np.testing.assert_array_equal(data.X * 16, bunch.data)
    np.testing.assert_array_equal(data.y, bunch.target)
    assert np.bincount(data.y).min() >= 170
    assert "1797" not in repr(data.X[:1]) and "(1797, 64)" in repr(data)


@pytest.mark.parametrize(
    "pixels, labels, match",
    [
        (
            np.zeros((10, 63)),
            np.arange(10),
            r"pixels must have shape \(n, 64\)",
        ),
        (np.zeros((10, 8, 8)), np.arange(10), "pixels must have shape"),
        (np.zeros((10, 64)), np.arange(9), "labels must have shape"),
        (
            np.full((10, 64), 17.0),
            np.arange(10),
            "pixels must be whole numbers from 0 to 16; row 0",
        ),
        (
            np.full((10, 64), 0.5),
            np.arange(10),
            "pixels must be whole numbers",
        ),
        (
            np.vstack([np.zeros((3, 64)), np.full((7, 64), np.nan)]),
            np.arange(10),
            "row 3",
        ),
        (
            np.zeros((10, 64)),
            np.r_[np.arange(9), 10],
            "labels must be whole numbers from 0 to 9; row 9",
        ),
        (np.zeros((10, 64)), np.r_[np.arange(9), 8], r"missing \[9\]"),
        (
            np.zeros((10, 64)),
            np.array(list("0123456789")),
            "labels must be numbers",
        ),
    ],
)
def test_check_digits_names_what_is_wrong(pixels, labels, match):
    with pytest.raises(DigitsDataError, match=match):
        check_digits(pixels, labels)


def test_check_digits_accepts_and_scales():
    X, y = check_digits(
        np.tile(np.arange(17), 4)[:64][None].repeat(10, 0), np.arange(10.0)
    )
    assert X.max() == 1.0 and y.dtype == np.int64


# --------------------------------------------------------------------------- noise columns


def test_noise_columns_are_appended_uniform_and_reproducible():
    X = load_sonar().X
    noisy = add_noise_columns(X, 240, seed=7)
    assert noisy.shape == (208, 300)
    np.testing.assert_array_equal(noisy[:, :60], X)
    noise = noisy[:, 60:]
    assert 0.0 <= noise.min() and noise.max() < 1.0
    assert abs(noise.mean() - 0.5) < 0.01
    np.testing.assert_array_equal(add_noise_columns(X, 240, seed=7), noisy)
    assert not np.array_equal(add_noise_columns(X, 240, seed=8), noisy)
    # No noise column tells mines from rocks better than chance would.
    y = load_sonar().y
    gaps = np.abs(noise[y == 0].mean(axis=0) - noise[y == 1].mean(axis=0))
    assert gaps.max() < 0.15


def test_fewer_noise_columns_are_a_prefix_of_more():
    X = np.zeros((30, 2))
    np.testing.assert_array_equal(
        add_noise_columns(X, 60, seed=1),
        add_noise_columns(X, 240, seed=1)[:, :62],
    )
    np.testing.assert_array_equal(add_noise_columns(X, 0, seed=1), X)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((np.zeros(5), 3), {"seed": 0}, ValueError, "X must be a 2-D array"),
        ((np.zeros((5, 2)), -1), {"seed": 0}, ValueError, "n_noise"),
        ((np.zeros((5, 2)), 2.0), {"seed": 0}, TypeError, "n_noise"),
        ((np.zeros((5, 2)), 2), {"seed": -1}, ValueError, "seed"),
        ((np.zeros((5, 2)), 2), {"seed": None}, TypeError, "seed"),
    ],
)
def test_add_noise_columns_validates(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        add_noise_columns(*args, **kwargs)
