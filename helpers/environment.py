"""A record of what ran a notebook, for readers comparing their numbers with the book's."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = [
    "cpu_vector_extensions",
    "environment_record",
    "onednn_enabled",
    "tensorflow_kernels",
]

_PACKAGES = ("tensorflow", "keras", "scikit-learn", "scikeras", "numpy")
# The instruction sets that decide which code oneDNN's matrix products run.
_EXTENSIONS = ("avx2", "fma", "avx512f", "amx_tile")


def onednn_enabled() -> bool:
    """Whether this process's TensorFlow runs whole operations as oneDNN primitives.

    TensorFlow decides once, when it is imported (from ``TF_ENABLE_ONEDNN_OPTS``
    or, when that is unset, from the CPU); this asks the library what it
    decided rather than reading the variable.
    """
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def cpu_vector_extensions(
    cpuinfo: str | Path = "/proc/cpuinfo",
) -> list[str] | None:
    """Which of AVX2, FMA, AVX-512 and AMX this CPU offers (Linux), or None where unknown."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return [name for name in _EXTENSIONS if name in flags]
    return None


def tensorflow_kernels() -> str:
    """The CPU kernels TensorFlow runs and the settings that chose them, as one short phrase.

    Examples
    --------
    >>> print(tensorflow_kernels().replace(", ", ",\\n"))  # doctest: +SKIP
    onednn ops off (TF_ENABLE_ONEDNN_OPTS=0),
    eigen contraction (TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL=0),
    onednn isa cap AVX2 (ONEDNN_MAX_CPU_ISA)
    """
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "none")
    ops = "onednn ops on" if onednn_enabled() else "onednn ops off"
    # TensorFlow reads this one itself and treats only "0" and "false" as off.
    custom = os.environ.get("TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL")
    contraction = (
        "eigen contraction"
        if custom in ("0", "false")
        else "onednn sgemm contraction"
    )
    return (
        f"{ops} (TF_ENABLE_ONEDNN_OPTS={setting}), {contraction} "
        f"(TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL={custom or 'unset'}), "
        f"onednn isa cap {cap} (ONEDNN_MAX_CPU_ISA)"
    )


def environment_record(seed: int | None = None) -> str:
    """One line: Python, the packages, the Keras backend, the kernels, the CPU, the seed.

    Examples
    --------
    >>> print(environment_record(seed=7))  # doctest: +SKIP
    python 3.11.7 | tensorflow 2.21.0 | ... | linux x86_64 (avx2 fma) | seed 7
    """
    import keras

    parts = [f"python {platform.python_version()}"]
    for name in _PACKAGES:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    parts.append(f"keras backend {keras.backend.backend()}")
    if keras.backend.backend() == "tensorflow":
        parts.append(tensorflow_kernels())
    extensions = cpu_vector_extensions()
    cpu = (
        "unknown" if extensions is None else " ".join(extensions) or "no avx2"
    )
    parts.append(f"{platform.system().lower()} {platform.machine()} ({cpu})")
    parts.append(f"seed {seed}")
    return " | ".join(parts)
