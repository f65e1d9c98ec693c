"""Load and validate the Sonar (mines vs. rocks) data set shipped with the book.

The chapters train small Keras networks on ``data/sonar.csv``. A silently
damaged copy (an editor adding a header, a spreadsheet turning a value into
``nan``, a truncated download) would still train, just worse, and the
dropout comparisons in the text would stop matching. So the loader checks
the file's structure cell by cell and, for the copy in the repository, its
SHA-256 checksum, and reports any problem as a :class:`SonarDataError` that
names the file and the exact row and column.

Examples
--------
>>> from helpers.data import load_sonar
>>> data = load_sonar()
>>> data.X.shape, data.y.shape
((208, 60), (208,))
>>> data.label_names
('M', 'R')
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_SONAR_PATH",
    "LABEL_NAMES",
    "N_FEATURES",
    "N_SAMPLES",
    "SONAR_SHA256",
    "SonarData",
    "SonarDataError",
    "load_sonar",
    "DigitsData",
    "DigitsDataError",
    "load_digits_data",
    "check_digits",
    "add_noise_columns",
]

SONAR_SHA256 = (
    "e90434cdbf00fcf93ffa911fe447ae25606979658e60f1d32e155c3b5240234d"
)
DEFAULT_SONAR_PATH = (
    Path(__file__).resolve().parent.parent / "data" / "sonar.csv"
)
N_SAMPLES = 208
N_FEATURES = 60
# Alphabetical, as scikit-learn's LabelEncoder would order them, so that
# encodings produced here and in any sklearn-based cell agree: M -> 0, R -> 1.
LABEL_NAMES = ("M", "R")

_N_FIELDS = N_FEATURES + 1
_LABEL_CODES = {name: code for code, name in enumerate(LABEL_NAMES)}
# The real file is about 88 kB. Reading is capped so that pointing the loader
# at a huge file or a device such as /dev/zero fails quickly instead of
# exhausting memory.
_MAX_BYTES = 1 << 20
# float() also accepts '0.0_5', non-ASCII digits and surrounding whitespace;
# none of those can come from a faithful copy of the file, so only plain
# ASCII decimal notation (optionally with an exponent) counts as a number.
_NUMBER = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)


class SonarDataError(ValueError):
    """The Sonar CSV file is missing, unreadable or not in the expected format.

    The message always starts with the file path, followed by what is wrong
    (for example ``"row 17 has 59 values, expected 61"``).
    """


@dataclass(frozen=True, eq=False)
class SonarData:
    """The Sonar data set as NumPy arrays.

    Attributes
    ----------
    X : numpy.ndarray
        Float64 array of shape ``(208, 60)``; every value is in ``[0, 1]``.
    y : numpy.ndarray
        Int64 array of shape ``(208,)``; ``0`` for a mine (``"M"``) and
        ``1`` for a rock (``"R"``).
    label_names : tuple of str
        ``("M", "R")``; ``label_names[k]`` is the letter encoded as ``k``.
    path : pathlib.Path
        The file the data was read from.
    sha256 : str
        Hex SHA-256 digest of the bytes that were read.
    """

    # eq=False: the generated __eq__ would compare arrays element-wise and
    # then fail with "truth value of an array is ambiguous".
    X: np.ndarray
    y: np.ndarray
    label_names: tuple[str, ...]
    path: Path
    sha256: str

    def __repr__(self) -> str:
        # The default repr would print all 12 480 values.
        return (
            f"SonarData(X=<{self.X.dtype} array {self.X.shape}>, "
            f"y=<{self.y.dtype} array {self.y.shape}>, "
            f"label_names={self.label_names!r}, path={str(self.path)!r}, "
            f"sha256={self.sha256!r})"
        )


def load_sonar(
    path: str | os.PathLike[str] | None = None,
    *,
    verify_checksum: bool | None = None,
) -> SonarData:
    """Read and validate the Sonar CSV file.

    The file must have exactly 208 rows of 61 comma-separated fields: 60
    numbers in ``[0, 1]`` followed by the class letter ``M`` or ``R``, with
    no header. ``\\n`` or ``\\r\\n`` line endings are accepted, as are blank
    lines at the very end of the file. Anything else (empty cells, spaces
    around values, ``nan`` or ``inf``, out-of-range values, unknown labels, a
    wrong number of rows or fields) raises :class:`SonarDataError`.

    Parameters
    ----------
    path : str, os.PathLike or None, optional
        File to read. ``None`` (the default) reads the copy shipped in the
        repository, ``DEFAULT_SONAR_PATH``.
    verify_checksum : bool or None, optional
        Whether to require the file's SHA-256 digest to equal
        ``SONAR_SHA256``. ``None`` (the default) means ``True`` for the
        shipped file and ``False`` for a file given by `path`. The checksum is
        compared only after the structure has been validated, so a damaged
        file reports its first concrete problem rather than just a mismatch.

    Returns
    -------
    SonarData
        ``X`` (208 x 60, float64), ``y`` (208, int64; M -> 0, R -> 1),
        ``label_names``, ``path`` and ``sha256``.

    Raises
    ------
    SonarDataError
        If the file is missing, a directory, unreadable, not text, malformed,
        or (when checked) has the wrong checksum. The message names the file.
    TypeError
        If `path` is not a str, an os.PathLike or None, or `verify_checksum`
        is not a bool or None.

    Examples
    --------
    >>> data = load_sonar()
    >>> data.X.dtype, data.y.dtype
    (dtype('float64'), dtype('int64'))
    >>> [data.label_names[k] for k in data.y[:3]]
    ['R', 'R', 'R']

    A copy elsewhere is validated the same way; pass
    ``verify_checksum=True`` to also insist it is byte-identical:

    >>> import shutil, tempfile
    >>> tmp = Path(tempfile.mkdtemp()) / "sonar.csv"
    >>> _ = shutil.copyfile(DEFAULT_SONAR_PATH, tmp)
    >>> load_sonar(tmp, verify_checksum=True).X.shape
    (208, 60)
    """
    if path is None:
        file = DEFAULT_SONAR_PATH
        check = True if verify_checksum is None else verify_checksum
    elif isinstance(path, (str, os.PathLike)):
        file = Path(path)
        check = False if verify_checksum is None else verify_checksum
    else:
        raise TypeError(
            f"path must be a str, an os.PathLike or None, not {type(path).__name__}"
        )
    if not isinstance(check, bool):
        raise TypeError(
            "verify_checksum must be a bool or None, "
            f"not {type(verify_checksum).__name__}"
        )

    raw = _read_bytes(file)
    digest = hashlib.sha256(raw).hexdigest()
    X, y = _parse(file, _decode(file, raw))
    if check and digest != SONAR_SHA256:
        raise _error(
            file,
            f"SHA-256 checksum mismatch: the file has {digest}, expected "
            f"{SONAR_SHA256}. The data is well-formed but is not the reference "
            f"copy{_differences_from_reference(file, X, y)}; restore data/sonar.csv "
            "from the repository, or pass verify_checksum=False to use a modified "
            "copy on purpose",
        )
    return SonarData(
        X=X, y=y, label_names=LABEL_NAMES, path=file, sha256=digest
    )


def _differences_from_reference(
    file: Path, X: np.ndarray, y: np.ndarray
) -> str:
    """Say how a well-formed copy differs from the shipped file, for the checksum error."""
    try:
        if file.resolve() == DEFAULT_SONAR_PATH.resolve():
            return ""  # this *is* the reference copy, damaged in a well-formed way
        reference = load_sonar()
    except (SonarDataError, OSError):
        return ""  # no intact reference to compare with
    cells = np.argwhere(X != reference.X)
    labels = np.flatnonzero(y != reference.y)
    if len(cells) == 0 and len(labels) == 0:
        return (
            " (every value and label equals the reference; only the bytes differ, "
            "for example line endings or number formatting)"
        )
    details = [
        f"row {r + 1}, column {c + 1}: {X[r, c]:.4f} here, {reference.X[r, c]:.4f} in the reference"
        for r, c in cells[:3]
    ]
    details += [
        f"row {r + 1}: label {LABEL_NAMES[y[r]]} here, "
        f"{LABEL_NAMES[reference.y[r]]} in the reference"
        for r in labels[:3]
    ]
    return (
        f" ({len(cells)} values and {len(labels)} labels differ from the reference; "
        + "; ".join(details)
        + ("; ..." if len(cells) > 3 or len(labels) > 3 else "")
        + ")"
    )


def _error(file: Path, problem: str) -> SonarDataError:
    return SonarDataError(f"{file}: {problem}")


def _read_bytes(file: Path) -> bytes:
    # Checked up front because opening a directory fails differently per OS
    # (IsADirectoryError on POSIX, PermissionError on Windows).
    if file.is_dir():
        raise _error(file, "is a directory, not a file")
    try:
        with file.open("rb") as fh:
            raw = fh.read(_MAX_BYTES + 1)
    except FileNotFoundError as exc:
        raise _error(file, "file not found") from exc
    except PermissionError as exc:
        raise _error(
            file, f"permission denied, cannot read the file ({exc})"
        ) from exc
    except OSError as exc:
        raise _error(file, f"cannot read the file ({exc})") from exc
    if len(raw) > _MAX_BYTES:
        raise _error(
            file,
            f"file is larger than {_MAX_BYTES} bytes; the Sonar file is about "
            "88 kB, so this is not it",
        )
    if not raw:
        raise _error(file, "file is empty")
    return raw


def _decode(file: Path, raw: bytes) -> str:
    # NUL bytes are valid UTF-8, but no text CSV contains them, and naming
    # binary content directly beats a confusing "row 1 has 1 values".
    nul = raw.find(b"\x00")
    if nul != -1:
        raise _error(
            file,
            f"contains a NUL byte at offset {nul}; this is binary data, not CSV text",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(
            file,
            f"is not UTF-8 text (undecodable byte 0x{raw[exc.start]:02x} at "
            f"offset {exc.start}); expected a plain-text CSV file",
        ) from exc


def _parse(file: Path, text: str) -> tuple[np.ndarray, np.ndarray]:
    lines = text.split("\n")
    # A final newline (or a few) leaves empty strings at the end; those are
    # not rows. Blank lines anywhere else are reported below.
    while lines and lines[-1] in ("", "\r"):
        lines.pop()
    if not lines:
        raise _error(file, "file is empty (it contains only line breaks)")

    features: list[list[float]] = []
    labels: list[int] = []
    for row, line in enumerate(lines, start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line.strip():
            raise _error(file, f"row {row} is blank")
        cells = line.split(",")
        if len(cells) != _N_FIELDS:
            raise _error(
                file,
                f"row {row} has {len(cells)} values, expected {_N_FIELDS}",
            )
        features.append(
            [
                _parse_value(file, row, col, cell)
                for col, cell in enumerate(cells[:-1], 1)
            ]
        )
        labels.append(_parse_label(file, row, cells[-1]))

    # Counted after the per-row checks: a header line or a half-written last
    # row is more usefully reported as that row's problem than as a count.
    if len(lines) != N_SAMPLES:
        raise _error(file, f"has {len(lines)} rows, expected {N_SAMPLES}")
    return np.array(features, dtype=np.float64), np.array(
        labels, dtype=np.int64
    )


def _check_cell_text(file: Path, row: int, col: int, cell: str) -> None:
    where = f"row {row}, column {col}"
    if cell == "":
        raise _error(file, f"{where} is empty")
    if cell != cell.strip():
        raise _error(
            file, f"{where}: {cell!r} has leading or trailing whitespace"
        )


def _parse_value(file: Path, row: int, col: int, cell: str) -> float:
    _check_cell_text(file, row, col, cell)
    where = f"row {row}, column {col}"
    if _NUMBER.fullmatch(cell):
        value = float(cell)
    else:
        try:
            value = float(cell)
        except ValueError:
            value = None
        # Only NaN/infinity get their own message: they are the likely
        # product of a spreadsheet or pandas round trip and deserve a name.
        if value is None or math.isfinite(value):
            raise _error(file, f"{where}: {cell!r} is not a number")
    if not math.isfinite(value):
        raise _error(
            file,
            f"{where}: {cell!r} is not a finite number (NaN and infinity are not allowed)",
        )
    if not 0.0 <= value <= 1.0:
        raise _error(file, f"{where}: value {cell} is outside [0, 1]")
    return value


def _parse_label(file: Path, row: int, cell: str) -> int:
    col = _N_FIELDS
    _check_cell_text(file, row, col, cell)
    try:
        return _LABEL_CODES[cell]
    except KeyError:
        allowed = " or ".join(repr(name) for name in LABEL_NAMES)
        raise _error(
            file, f"row {row}, column {col}: label {cell!r} is not {allowed}"
        ) from None


# --------------------------------------------------------------------------- digits images

DIGITS_SHAPE = (8, 8)
DIGITS_N_SAMPLES = 1797
DIGITS_MAX_VALUE = (
    16  # each pixel counts how many of a 4x4 block's 16 bits were set
)


class DigitsDataError(ValueError):
    """The digits images are not what scikit-learn ships (wrong shape, values or labels)."""


@dataclass(frozen=True, eq=False)
class DigitsData:
    """scikit-learn's handwritten digits, scaled to ``[0, 1]``.

    Attributes
    ----------
    X : numpy.ndarray
        Float64 array of shape ``(1797, 64)``: each row is one 8x8 image, row
        by row, its pixel counts (0 to 16) divided by 16.
    y : numpy.ndarray
        Int64 array of shape ``(1797,)``: the digit shown, 0 to 9.
    image_shape : tuple of int
        ``(8, 8)``.
    """

    X: np.ndarray
    y: np.ndarray
    image_shape: tuple[int, int] = DIGITS_SHAPE

    def __repr__(self) -> str:
        return (
            f"DigitsData(X=<{self.X.dtype} array {self.X.shape}>, "
            f"y=<{self.y.dtype} array {self.y.shape}>, image_shape={self.image_shape!r})"
        )


def check_digits(pixels, labels) -> tuple[np.ndarray, np.ndarray]:
    """Validate digits images given as pixel counts and labels; return ``(X, y)``.

    ``pixels`` must be an ``(n, 64)`` array of whole numbers from 0 to 16 and
    ``labels`` ``n`` whole numbers from 0 to 9, every digit present.  Returns
    ``X = pixels / 16`` (float64) and ``y`` (int64).  Raises
    :class:`DigitsDataError` naming the argument and the first offending row.

    Examples
    --------
    >>> X, y = check_digits(np.full((10, 64), 16), np.arange(10))
    >>> float(X.max()), y.dtype
    (1.0, dtype('int64'))
    """
    pixels = np.asarray(pixels)
    labels = np.asarray(labels)
    n_pixels = DIGITS_SHAPE[0] * DIGITS_SHAPE[1]
    if pixels.ndim != 2 or pixels.shape[1] != n_pixels:
        raise DigitsDataError(
            f"pixels must have shape (n, {n_pixels}); got {pixels.shape}"
        )
    if labels.shape != (len(pixels),):
        raise DigitsDataError(
            f"labels must have shape ({len(pixels)},), one per image; got {labels.shape}"
        )
    for name, values, top in (
        ("pixels", pixels, DIGITS_MAX_VALUE),
        ("labels", labels, 9),
    ):
        if not (
            np.issubdtype(values.dtype, np.integer)
            or np.issubdtype(values.dtype, np.floating)
        ):
            raise DigitsDataError(
                f"{name} must be numbers; got dtype {values.dtype}"
            )
        flat = values.reshape(len(values), -1).astype(float)
        bad = (
            ~np.isfinite(flat)
            | (flat < 0)
            | (flat > top)
            | (flat != np.round(flat))
        )
        if bad.any():
            row = int(np.argwhere(bad.any(axis=1))[0, 0])
            raise DigitsDataError(
                f"{name} must be whole numbers from 0 to {top}; row {row} holds "
                f"{flat[row][bad[row]][0]!r}"
            )
    missing = sorted(set(range(10)) - set(labels.astype(int).tolist()))
    if missing:
        raise DigitsDataError(
            f"labels must include every digit 0-9; missing {missing}"
        )
    return pixels.astype(np.float64) / DIGITS_MAX_VALUE, labels.astype(
        np.int64
    )


def load_digits_data() -> DigitsData:
    """scikit-learn's 1,797 handwritten digits (8x8 pixels, ten classes), checked and scaled.

    The images are installed with scikit-learn (``sklearn.datasets.load_digits``):
    nothing is downloaded.  They are checked with :func:`check_digits`, and the
    number of images must be scikit-learn's 1,797.

    Examples
    --------
    >>> data = load_digits_data()
    >>> data.X.shape, sorted(set(data.y.tolist())) == list(range(10))
    ((1797, 64), True)
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X, y = check_digits(bunch.data, bunch.target)
    if len(X) != DIGITS_N_SAMPLES:
        raise DigitsDataError(
            f"scikit-learn's digits should hold {DIGITS_N_SAMPLES} images; this installation "
            f"has {len(X)}"
        )
    return DigitsData(X=X, y=y)


# --------------------------------------------------------------------------- noise columns


def add_noise_columns(X, n_noise: int, *, seed: int) -> np.ndarray:
    """``X`` with ``n_noise`` columns of pure noise appended, the same for a given seed.

    The noise is uniform on ``[0, 1]`` (the range of Sonar's features) and
    carries no information about any label.  Column ``j`` of the noise depends
    only on ``seed``, ``j`` and the number of rows, so the first 60 noise
    columns are the same whether 60 or 240 are added.

    Parameters
    ----------
    X
        A 2-D array of features.
    n_noise
        Number of noise columns, 0 or more (0 returns a float copy of ``X``).
    seed
        Seed of NumPy's generator (a non-negative integer below 2**32).

    Examples
    --------
    >>> X = np.zeros((3, 2))
    >>> add_noise_columns(X, 4, seed=7).shape
    (3, 6)
    >>> first = add_noise_columns(X, 4, seed=7)[:, :3]
    >>> bool(np.all(first == add_noise_columns(X, 1, seed=7)[:, :3]))
    True
    """
    from helpers.validation import check_int, check_seed

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array; got shape {X.shape}")
    n_noise = check_int("n_noise", n_noise, minimum=0)
    seed = check_seed("seed", seed)
    rng = np.random.default_rng(seed)
    # Drawn one column at a time (rows of the transposed draw), so that a column's
    # values do not depend on how many columns follow it.
    noise = rng.random((n_noise, len(X))).T
    return np.hstack([X, noise])
