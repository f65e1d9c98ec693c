"""Lane training's inner loop, compiled by Numba: every step of every lane.

:mod:`helpers.lanes` prepares a group of lanes (rows, shuffles, dropout
masks, initial weights, per-lane values) and hands them to
:func:`train_lanes`, which runs all steps of one lane, then the next, in
machine code.  What a step computes is what the TensorFlow graph it replaces
computed, in float32 and Keras' order of operations: the forward pass, the
loss Keras uses for a sigmoid or softmax output, the gradients, the SGD or
Adam update and the ``MaxNorm`` constraint.

Why this gives the same numbers on every x86-64 CPU:

* Numba (LLVM) is not allowed to reorder floating-point arithmetic (no
  ``fastmath``): it may pack independent operations into vector
  instructions, whose width depends on the CPU, but every sum is still added
  in the order written here, and no multiply and add are fused.
* The few transcendental functions (``exp``, ``log``) are computed here from
  additions, multiplications and divisions (:func:`_exp`, :func:`_log`),
  not by the C library, whose versions differ between CPUs.  ``sqrt`` is
  correctly rounded by IEEE 754 everywhere.

Why it is fast: a step is a handful of small matrix products (16 rows by 60
units), and the products here keep a block of 4 rows by 16 units of the
result in registers while running down the shared dimension
(:func:`_matmul`; 512-bit vector registers where the CPU has them).  Layer
widths are padded to a multiple of 16 and batches to a multiple of 4 with
zeros, which adds exact zeros to every sum, so the real units' numbers are
those of the unpadded product.

Convolutions are matrix products too: every pixel's window of the input
image becomes one row of a "patch" matrix (:func:`_patches`), so that the
convolution is patches @ kernel, its kernel gradient patches.T @ gradient
and its input gradient the gradient @ kernel.T, added back from each patch
to the pixels it was copied from.  Max pooling remembers which input each
output took and sends the gradient there.  On the Intel Xeon of session 14
a step of chapter 7's convolutional network (32 images of 8 x 8 pixels)
took about 1.0 ms against 4 ms for TensorFlow's kernels (``fit_compiled``);
blocks of 16 units instead of 8 and 512-bit vectors (session 16) brought it
to 0.7-0.8 ms, and a step of its 256-256 perceptron from 0.52 to 0.42 ms.
"""

from __future__ import annotations

import math
import os

# Numba leaves LLVM's SLP vectorizer off by default; the matrix products
# below rely on it to pack their independent sums into vector registers
# (about three times faster here).  It does not reorder any sum.
os.environ.setdefault("NUMBA_SLP_VECTORIZE", "1")


def _allow_512_bit_vectors() -> None:
    """Let LLVM use the CPU's 512-bit vector registers (AVX-512), if it has them.

    LLVM tunes recent Intel CPUs to prefer 256-bit vectors even where
    512-bit ones exist (its ``prefer-256-bit`` tuning, chosen when wide
    vectors slowed the clock).  The products' blocks of 16 sums a row fill
    one 512-bit register.  On the Xeon of session 16, products in blocks of
    16 units with 512-bit vectors took two thirds of the time of the former
    blocks of 8 with 256-bit ones, and a whole lane-step 0.9-0.97 of the
    time it takes with 256-bit vectors (``benchmarks/bench_products.py``).
    Vector width decides only how independent operations are packed, never
    the order of a sum, so the numbers are the same either way.  A reader's
    own ``NUMBA_CPU_FEATURES`` is left as it is.
    """
    if "NUMBA_CPU_FEATURES" in os.environ:
        return
    import llvmlite.binding as llvm

    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # (a platform LLVM cannot ask; Numba falls back too)
        return
    if "+avx512f" in features.split(","):
        os.environ["NUMBA_CPU_FEATURES"] = features + ",-prefer-256-bit"


# (Numba reads both settings when it is first imported.)
_allow_512_bit_vectors()

import numba  # noqa: E402
import numpy as np  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba.core import cgutils, types  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
# Row blocks and unit blocks of the matrix products.
ROW_BLOCK = 4
UNIT_BLOCK = 16


# TensorFlow runs its CPU kernels with denormal numbers flushed to zero (the
# FTZ and DAZ bits of the x86 MXCSR register); so does train_lanes.  Besides
# matching TensorFlow's arithmetic, it matters for speed: once a network fits
# its training rows, gradients shrink into the denormal range, where every
# operation on them costs about a hundred cycles (measured: a lane step of the
# baseline took up to twice as long without it).
_FLUSH_DENORMALS = np.uint32(0x8040)


def _mxcsr_call(builder, name, pointer):
    function_type = ir.FunctionType(
        ir.VoidType(), [ir.IntType(8).as_pointer()]
    )
    function = cgutils.get_or_insert_function(
        builder.module, function_type, name
    )
    builder.call(
        function, [builder.bitcast(pointer, ir.IntType(8).as_pointer())]
    )


@intrinsic
def _get_mxcsr(typingctx):
    """The x86 MXCSR register (floating-point control and status)."""

    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.load(slot)

    return types.uint32(), codegen


@intrinsic
def _set_mxcsr(typingctx, value):
    """Load ``value`` into the x86 MXCSR register."""

    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        builder.store(args[0], slot)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()

    return types.void(types.uint32), codegen


@numba.njit(cache=True, error_model="numpy")
def _exp(x):
    """exp(x) in float64 from + - * / only: the same bits on every CPU.

    exp(x) = 2**k * exp(r) with |r| <= ln(2) / 2, and exp(r) from its
    Taylor series (16 terms: error below 1e-16 relative).
    """
    if x > 709.0:
        return np.inf
    if x < -745.0:
        return 0.0
    k = math.floor(x * _INV_LN2 + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    term = 1.0
    total = 1.0
    for n in range(1, 17):
        term = term * r / n
        total = total + term
    return math.ldexp(total, int(k))


@numba.njit(cache=True, error_model="numpy")
def _log(x):
    """log(x) for x > 0 in float64 from + - * / only.

    x = m * 2**e with sqrt(1/2) <= m < sqrt(2), and
    log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, from its series.
    """
    m, e = math.frexp(x)
    if m < 0.70710678118654752:
        m = m * 2.0
        e = e - 1
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    term = s
    total = s
    for n in range(1, 13):
        term = term * s2
        total = total + term / (2 * n + 1)
    return 2.0 * total + e * _LN2_HI + e * _LN2_LO


@numba.njit(cache=True, error_model="numpy")
def _log1p(x):
    """log(1 + x) in float64 for x >= 0 from + - * / only.

    For x <= 1, 2 atanh(s) with s = x / (2 + x) <= 1/3 from its series (no
    rounding of 1 + x); above, :func:`_log` of 1 + x.
    """
    if x > 1.0:
        return _log(1.0 + x)
    s = x / (2.0 + x)
    s2 = s * s
    term = s
    total = s
    for n in range(1, 19):
        term = term * s2
        total = total + term / (2 * n + 1)
    return 2.0 * total


@numba.njit(cache=True, error_model="numpy", boundscheck=False)
def _matmul(A, B, C, M, N, Kr):
    """C[:M, :N] = A[:M, :Kr] @ B[:Kr, :N], each sum in the order q = 0, 1, ...

    ``M`` is a multiple of ``ROW_BLOCK`` (4) and ``N`` of ``UNIT_BLOCK``
    (16).  The result is computed in blocks of 4 rows by 16 units, held in
    registers while running down the shared dimension: row r + i's sums in
    the variables named c, d, e and g for i = 0 to 3, unit jb + j's in the
    one numbered j (on CPUs with 512-bit vector registers, one register
    holds a row's 16).  Blocks of 16 units took two thirds of the time of
    the blocks of 8 used until session 16, whose 4 rows filled only 256-bit
    registers.
    """
    # (while loops: Numba compiles a range with a step into a much slower loop;
    # the block is written out in full, as calling a function for each block
    # made the products three times slower)
    r = 0
    while r < M:
        jb = 0
        while jb < N:
            c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = _ZERO
            c8 = c9 = c10 = c11 = c12 = c13 = c14 = c15 = _ZERO
            d0 = d1 = d2 = d3 = d4 = d5 = d6 = d7 = _ZERO
            d8 = d9 = d10 = d11 = d12 = d13 = d14 = d15 = _ZERO
            e0 = e1 = e2 = e3 = e4 = e5 = e6 = e7 = _ZERO
            e8 = e9 = e10 = e11 = e12 = e13 = e14 = e15 = _ZERO
            g0 = g1 = g2 = g3 = g4 = g5 = g6 = g7 = _ZERO
            g8 = g9 = g10 = g11 = g12 = g13 = g14 = g15 = _ZERO
            for q in range(Kr):
                w0 = B[q, jb + 0]
                w1 = B[q, jb + 1]
                w2 = B[q, jb + 2]
                w3 = B[q, jb + 3]
                w4 = B[q, jb + 4]
                w5 = B[q, jb + 5]
                w6 = B[q, jb + 6]
                w7 = B[q, jb + 7]
                w8 = B[q, jb + 8]
                w9 = B[q, jb + 9]
                w10 = B[q, jb + 10]
                w11 = B[q, jb + 11]
                w12 = B[q, jb + 12]
                w13 = B[q, jb + 13]
                w14 = B[q, jb + 14]
                w15 = B[q, jb + 15]
                a = A[r + 0, q]
                c0 += a * w0
                c1 += a * w1
                c2 += a * w2
                c3 += a * w3
                c4 += a * w4
                c5 += a * w5
                c6 += a * w6
                c7 += a * w7
                c8 += a * w8
                c9 += a * w9
                c10 += a * w10
                c11 += a * w11
                c12 += a * w12
                c13 += a * w13
                c14 += a * w14
                c15 += a * w15
                a = A[r + 1, q]
                d0 += a * w0
                d1 += a * w1
                d2 += a * w2
                d3 += a * w3
                d4 += a * w4
                d5 += a * w5
                d6 += a * w6
                d7 += a * w7
                d8 += a * w8
                d9 += a * w9
                d10 += a * w10
                d11 += a * w11
                d12 += a * w12
                d13 += a * w13
                d14 += a * w14
                d15 += a * w15
                a = A[r + 2, q]
                e0 += a * w0
                e1 += a * w1
                e2 += a * w2
                e3 += a * w3
                e4 += a * w4
                e5 += a * w5
                e6 += a * w6
                e7 += a * w7
                e8 += a * w8
                e9 += a * w9
                e10 += a * w10
                e11 += a * w11
                e12 += a * w12
                e13 += a * w13
                e14 += a * w14
                e15 += a * w15
                a = A[r + 3, q]
                g0 += a * w0
                g1 += a * w1
                g2 += a * w2
                g3 += a * w3
                g4 += a * w4
                g5 += a * w5
                g6 += a * w6
                g7 += a * w7
                g8 += a * w8
                g9 += a * w9
                g10 += a * w10
                g11 += a * w11
                g12 += a * w12
                g13 += a * w13
                g14 += a * w14
                g15 += a * w15
            C[r + 0, jb + 0] = c0
            C[r + 0, jb + 1] = c1
            C[r + 0, jb + 2] = c2
            C[r + 0, jb + 3] = c3
            C[r + 0, jb + 4] = c4
            C[r + 0, jb + 5] = c5
            C[r + 0, jb + 6] = c6
            C[r + 0, jb + 7] = c7
            C[r + 0, jb + 8] = c8
            C[r + 0, jb + 9] = c9
            C[r + 0, jb + 10] = c10
            C[r + 0, jb + 11] = c11
            C[r + 0, jb + 12] = c12
            C[r + 0, jb + 13] = c13
            C[r + 0, jb + 14] = c14
            C[r + 0, jb + 15] = c15
            C[r + 1, jb + 0] = d0
            C[r + 1, jb + 1] = d1
            C[r + 1, jb + 2] = d2
            C[r + 1, jb + 3] = d3
            C[r + 1, jb + 4] = d4
            C[r + 1, jb + 5] = d5
            C[r + 1, jb + 6] = d6
            C[r + 1, jb + 7] = d7
            C[r + 1, jb + 8] = d8
            C[r + 1, jb + 9] = d9
            C[r + 1, jb + 10] = d10
            C[r + 1, jb + 11] = d11
            C[r + 1, jb + 12] = d12
            C[r + 1, jb + 13] = d13
            C[r + 1, jb + 14] = d14
            C[r + 1, jb + 15] = d15
            C[r + 2, jb + 0] = e0
            C[r + 2, jb + 1] = e1
            C[r + 2, jb + 2] = e2
            C[r + 2, jb + 3] = e3
            C[r + 2, jb + 4] = e4
            C[r + 2, jb + 5] = e5
            C[r + 2, jb + 6] = e6
            C[r + 2, jb + 7] = e7
            C[r + 2, jb + 8] = e8
            C[r + 2, jb + 9] = e9
            C[r + 2, jb + 10] = e10
            C[r + 2, jb + 11] = e11
            C[r + 2, jb + 12] = e12
            C[r + 2, jb + 13] = e13
            C[r + 2, jb + 14] = e14
            C[r + 2, jb + 15] = e15
            C[r + 3, jb + 0] = g0
            C[r + 3, jb + 1] = g1
            C[r + 3, jb + 2] = g2
            C[r + 3, jb + 3] = g3
            C[r + 3, jb + 4] = g4
            C[r + 3, jb + 5] = g5
            C[r + 3, jb + 6] = g6
            C[r + 3, jb + 7] = g7
            C[r + 3, jb + 8] = g8
            C[r + 3, jb + 9] = g9
            C[r + 3, jb + 10] = g10
            C[r + 3, jb + 11] = g11
            C[r + 3, jb + 12] = g12
            C[r + 3, jb + 13] = g13
            C[r + 3, jb + 14] = g14
            C[r + 3, jb + 15] = g15
            jb += UNIT_BLOCK
        r += ROW_BLOCK


@numba.njit(cache=True, error_model="numpy", boundscheck=False)
def _product_backward(
    A, G, kernel, d_kernel, d_bias, wt, d_A, rows, n_in, n_units, first
):
    """The gradients of ``out = A @ kernel + bias`` (a ``Dense`` layer, or a
    convolution on its patches) given ``G``, the loss's gradient at ``out``.

    Writes the kernel's gradient ``A.T @ G`` and the bias's (the column sums
    of ``G``) and, unless this is the ``first`` layer, ``A``'s gradient
    ``G @ kernel.T`` into ``d_A`` (through ``wt``, a transposed copy of the
    kernel, which keeps the product's inner loop on contiguous numbers).
    """
    # (A.T: a transposed view; Numba compiles _matmul for it apart)
    _matmul(A.T, G, d_kernel, n_in, n_units, rows)
    for c in range(n_units):
        d_bias[c] = _ZERO
    for q in range(rows):
        g_q = G[q]
        for c in range(n_units):
            d_bias[c] += g_q[c]
    if first:
        return
    for i in range(n_in):
        for c in range(n_units):
            wt[c, i] = kernel[i, c]
    _matmul(G, wt, d_A, rows, n_in, n_units)


@numba.njit(cache=True, error_model="numpy", boundscheck=False)
def _layer(flat, offsets, fan_in, units):
    """Views of one layer's kernel (fan_in, units) and bias in a lane's flat parameters."""
    kw, kb = offsets[0], offsets[1]
    kernel = flat[kw : kw + fan_in * units].reshape((fan_in, units))
    return kernel, flat[kb : kb + units]


@numba.njit(cache=True, error_model="numpy", boundscheck=False)
def _pad_units(n):
    return (n + UNIT_BLOCK - 1) // UNIT_BLOCK * UNIT_BLOCK


@numba.njit(cache=True, error_model="numpy", boundscheck=False)
def _pad_rows(n):
    return (n + ROW_BLOCK - 1) // ROW_BLOCK * ROW_BLOCK


@numba.njit(cache=True, error_model="numpy", boundscheck=False)
def _patches(h, buffer, bs, conv):
    """The batch's image patches, one row per pixel: what a "same" convolution multiplies.

    ``h[r]`` is row r's image (height, width, channels, row-major); patch
    row ``r * n_pixels + i * width + j`` holds the kernel's window around
    pixel (i, j), window rows first, zeros outside the image, as the
    kernel's rows are ordered (Keras' kernel reshaped to
    ``(kh * kw * channels, filters)``).  Only the numbers copied from the
    image are written.  The zeros (a window's part outside the image, and
    the padding of pixels to whole row blocks and of patch columns to whole
    unit blocks) are in the same places for every image and every batch, so
    ``buffer`` must hold zeros there: it is allocated as zeros and only ever
    filled by this function, for one convolution.  Not writing the zeros
    again, indexing the flat buffer and giving one-channel images a loop of
    their own took the first convolution's patches (32 images of 8 x 8
    pixels) from 88 to 24 microseconds on the Xeon of session 16.

    The copies go through views of a pixel's numbers (and of a window
    column's patch rows), indexed from 0: an index Numba cannot prove
    non-negative gets NumPy's wrap-around arithmetic on every access, which
    also keeps LLVM from turning the copy into vector moves.  Through views,
    this function and :func:`_add_back_patches` take a third of the time
    they took (session 22, AMD EPYC, sampled with ``perf`` and read against
    the unchanged matrix products: from 24% of a step of chapter 7's
    convolutional network to 10% of the shorter step), and a whole step
    about 15% less.
    """
    height, width, channels = conv[2], conv[3], conv[6]
    kh, kw, n_columns = conv[8], conv[9], conv[10]
    n_pixels = _pad_rows(height * width)
    P = buffer[: bs * n_pixels * n_columns].reshape(
        (bs * n_pixels, n_columns)
    )
    top, left = (kh - 1) // 2, (kw - 1) // 2
    for r in range(bs):
        h_r = h[r]
        for i in range(height):
            first = r * n_pixels + i * width
            for di in range(kh):
                ii = i + di - top
                if ii < 0 or ii >= height:
                    continue
                for dj in range(kw):
                    c = (di * kw + dj) * channels
                    # pixels j whose window column dj falls inside the image
                    j_lo = max(0, left - dj)
                    j_hi = min(width, width + left - dj)
                    # (indices into the flat buffer, not a view of each
                    # patch row, and for one channel a loop without the
                    # channel loop: see the docstring)
                    at = (first + j_lo) * n_columns + c
                    source = (ii * width + j_lo + dj - left) * channels
                    if channels == 1:
                        n = j_hi - j_lo
                        to = buffer[at : at + n * n_columns : n_columns]
                        pixels = h_r[source : source + n]
                        for q in range(n):
                            to[q] = pixels[q]
                        continue
                    for _ in range(j_lo, j_hi):
                        to = buffer[at : at + channels]
                        pixel = h_r[source : source + channels]
                        for ch in range(channels):
                            to[ch] = pixel[ch]
                        at += n_columns
                        source += channels
    return P


@numba.njit(cache=True, error_model="numpy", boundscheck=False)
def _add_back_patches(dP, g, bs, conv):
    """The gradient of a convolution's input from its patches' gradient ``dP``.

    Each number of a patch was copied from one input number (see
    :func:`_patches`), so the input number's gradient is the sum of the
    gradients of its copies.  The sum for a pixel is added in order of the
    pixels whose windows cover it (row, then column, ascending: the order in
    which sending each patch row's numbers back would add them), in one pass
    per pixel that writes each of its numbers once: for chapter 7's second
    convolution, two thirds of the time of sending each patch row back
    (session 16).  Writes ``g[:bs]``, padding included.
    """
    height, width, channels = conv[2], conv[3], conv[6]
    kh, kw = conv[8], conv[9]
    n_pixels = _pad_rows(height * width)
    n_real = height * width * channels
    top, left = (kh - 1) // 2, (kw - 1) // 2
    for r in range(bs):
        g_r = g[r]
        for c in range(n_real, _pad_units(n_real)):
            g_r[c] = _ZERO
        for ii in range(height):
            for jj in range(width):
                target = (ii * width + jj) * channels
                pixel = g_r[target : target + channels]
                for ch in range(channels):
                    pixel[ch] = _ZERO
                # window row di of pixel i covers row ii when i = ii - di +
                # top: di descending is i ascending (likewise dj and j)
                for di in range(kh - 1, -1, -1):
                    i = ii - di + top
                    if i < 0 or i >= height:
                        continue
                    for dj in range(kw - 1, -1, -1):
                        j = jj - dj + left
                        if j < 0 or j >= width:
                            continue
                        c = (di * kw + dj) * channels
                        share = dP[r * n_pixels + i * width + j, c:]
                        for ch in range(channels):
                            pixel[ch] += share[ch]


@numba.njit(cache=True, error_model="numpy", boundscheck=False)
def _buffer_starts(ops, bs):
    """Where each layer's share of the convolution and pooling buffers starts.

    Returns ``(patch_start, choice_start, n_patch, n_conv)``: each
    convolution's patches (kept from the forward pass for the backward one)
    and each max pooling's choices have their own stretch of one buffer;
    ``n_patch`` and ``n_conv`` are the largest patch and product-output
    sizes, for the buffers every convolution reuses.
    """
    n_ops = ops.shape[0]
    patch_start = np.zeros(n_ops + 1, dtype=np.int64)
    choice_start = np.zeros(n_ops + 1, dtype=np.int64)
    n_patch = 1
    n_conv = 1
    for o in range(n_ops):
        size = 0
        choices = 0
        if ops[o, 0] == 3:
            n_pixels = _pad_rows(ops[o, 2] * ops[o, 3])
            size = bs * n_pixels * ops[o, 10]
            n_patch = max(n_patch, size)
            n_conv = max(n_conv, bs * n_pixels * ops[o, 11])
        elif ops[o, 0] == 4:
            choices = bs * (ops[o, 2] // ops[o, 5]) * (ops[o, 3] // ops[o, 6])
            choices = choices * ops[o, 4]
        patch_start[o + 1] = patch_start[o] + size
        choice_start[o + 1] = choice_start[o] + choices
    return patch_start, choice_start, n_patch, n_conv


@numba.njit(cache=True, error_model="numpy", boundscheck=False)
def _forward(
    ops,
    p_off,
    pk,
    acts,
    bs,
    masks,
    base,
    scales,
    training,
    patch_buffer,
    patch_start,
    conv_buffer,
    choice_buffer,
    choice_start,
):
    """The forward pass of ``bs`` rows, ``acts[0]`` to the logits in ``acts[-1]``.

    ``pk`` holds one network's flat parameters; in training, row ``r``'s
    dropout masks are ``masks[base + r]`` and the layers' scales
    ``scales``; out of training, dropout layers pass their input on.
    """
    n_ops = ops.shape[0]
    for o in range(n_ops):
        h = acts[o]
        out = acts[o + 1]
        kind = ops[o, 0]
        if kind == 0:
            fan_in, units = ops[o, 2], ops[o, 3]
            kernel, bias = _layer(pk, p_off[ops[o, 1]], fan_in, units)
            _matmul(h, kernel, out, bs, units, fan_in)
            for r in range(bs):
                o_r = out[r]
                for j in range(units):
                    o_r[j] = o_r[j] + bias[j]
                if ops[o, 4] == 1:
                    for j in range(units):
                        if o_r[j] < _ZERO:
                            o_r[j] = _ZERO
        elif kind == 1:
            columns, first, real = ops[o, 2], ops[o, 3], ops[o, 6]
            scale = scales[ops[o, 1]]
            for r in range(bs):
                m_r = masks[base + r, first : first + real]
                for c in range(real):
                    if not training:
                        out[r, c] = h[r, c]  # (inference: no dropout)
                        continue
                    factor = scale if m_r[c] else _ZERO
                    out[r, c] = h[r, c] * factor
                for c in range(real, columns):
                    out[r, c] = _ZERO
        elif kind == 2:
            # SpatialDropout2D: one mask number per feature map.
            pixels, first, maps = ops[o, 2], ops[o, 3], ops[o, 6]
            scale = scales[ops[o, 1]]
            n = pixels * maps
            for r in range(bs):
                m_r = masks[base + r, first : first + maps]
                h_r = h[r]
                o_r = out[r]
                for q in range(pixels):
                    for c in range(maps):
                        if not training:
                            o_r[q * maps + c] = h_r[q * maps + c]
                            continue
                        factor = scale if m_r[c] else _ZERO
                        o_r[q * maps + c] = h_r[q * maps + c] * factor
                for c in range(n, _pad_units(n)):
                    o_r[c] = _ZERO
        elif kind == 3:
            # Conv2D ("same" padding, stride 1): patches @ kernel.
            d, pixels = ops[o, 1], ops[o, 2] * ops[o, 3]
            maps, n_columns, n_units = (
                ops[o, 7],
                ops[o, 10],
                ops[o, 11],
            )
            n_pixels = _pad_rows(pixels)
            kernel, bias = _layer(pk, p_off[d], n_columns, n_units)
            patches = _patches(h, patch_buffer[patch_start[o] :], bs, ops[o])
            C = conv_buffer[: bs * n_pixels * n_units].reshape(
                (bs * n_pixels, n_units)
            )
            n_real = ops[o, 8] * ops[o, 9] * ops[o, 6]
            _matmul(patches, kernel, C, bs * n_pixels, n_units, n_real)
            n = pixels * maps
            for r in range(bs):
                o_r = out[r]
                for q in range(pixels):
                    c_q = C[r * n_pixels + q]
                    for c in range(maps):
                        v = c_q[c] + bias[c]
                        if ops[o, 4] == 1 and v < _ZERO:
                            v = _ZERO
                        o_r[q * maps + c] = v
                for c in range(n, _pad_units(n)):
                    o_r[c] = _ZERO
        else:
            # MaxPooling2D ("valid", strides = pool size); the input
            # each output took is kept for the backward pass.
            height, width, maps = ops[o, 2], ops[o, 3], ops[o, 4]
            ph, pw = ops[o, 5], ops[o, 6]
            out_h, out_w = height // ph, width // pw
            n = out_h * out_w * maps
            choice = choice_buffer[
                choice_start[o] : choice_start[o + 1]
            ].reshape((bs, n))
            for r in range(bs):
                h_r = h[r]
                o_r = out[r]
                c_r = choice[r]
                for i in range(out_h):
                    for j in range(out_w):
                        at = (i * out_w + j) * maps
                        corner = (i * ph * width + j * pw) * maps
                        for c in range(maps):
                            best = corner + c
                            top = h_r[best]
                            for di in range(ph):
                                for dj in range(pw):
                                    at_in = (
                                        corner + (di * width + dj) * maps + c
                                    )
                                    if h_r[at_in] > top:
                                        top = h_r[at_in]
                                        best = at_in
                            o_r[at + c] = top
                            c_r[at + c] = np.int32(best)
                for c in range(n, _pad_units(n)):
                    o_r[c] = _ZERO


@numba.njit(cache=True, error_model="numpy", boundscheck=False)
def train_lanes(
    ops,
    p_off,
    binary,
    optimizer,
    adam,
    inverse_time,
    eps,
    params,
    slots,
    t,
    X,
    Y,
    orders,
    valid,
    active,
    masks,
    scales,
    learning_rate,
    momentum,
    decay_rate,
    decay_steps,
    limits,
    bs,
    width,
    losses,
    hits,
):
    """Run every step of every lane; ``params``, ``slots`` and ``t`` are updated in place.

    ``ops`` has one row of 12 numbers per layer, in order (unused numbers
    are 0), widths padded to multiples of ``UNIT_BLOCK``:

    * ``(0, d, fan_in, units, relu, limit index or -1, real units)`` for
      ``Dense``, the d-th layer with parameters;
    * ``(1, j, width, mask column, 0, -1, real width)`` for ``Dropout``, the
      j-th dropout layer;
    * ``(2, j, pixels, mask column, 0, -1, maps)`` for ``SpatialDropout2D``;
    * ``(3, d, height, width, relu, limit index or -1, channels, maps,
      kernel height, kernel width, patch columns, padded maps)`` for
      ``Conv2D``;
    * ``(4, 0, height, width, maps, pool height, pool width)`` for
      ``MaxPooling2D``.

    A row's image is its numbers in (height, width, channel) order, as
    Keras lays it out; ``p_off[d]`` is where the d-th kernel and bias start
    in a lane's flat ``params`` (a convolution's kernel as the matrix
    ``(kernel height * kernel width * channels, maps)``).  ``optimizer``
    is 0 for SGD, 1 for SGD with momentum, 2 for Adam (``adam`` holding
    beta_1, beta_2 and epsilon).  Per lane ``k`` and step ``s`` of ``bs``
    rows (a multiple of ``ROW_BLOCK``): the rows
    ``orders[k, s * bs:(s + 1) * bs]`` of ``X[k]`` with weights ``valid``
    (0 for padding), dropout ``masks[k, row]``, and ``active[k, s]`` false
    for a step the lane sits out.  Writes each step's summed loss and hits.
    """
    K = params.shape[0]
    P = params.shape[1]
    T = active.shape[1]
    n_ops = ops.shape[0]
    F = X.shape[2]
    # Rows a little longer than the widest layer: a row length that is a
    # multiple of 4 KiB puts the rows a product reads down a column in the
    # same cache set (a transposed copy took five times as long).
    stride = width + 2 * UNIT_BLOCK
    acts = np.zeros((n_ops + 1, bs, stride), dtype=np.float32)
    g_cur = np.zeros((bs, stride), dtype=np.float32)
    g_next = np.zeros((bs, stride), dtype=np.float32)
    wt = np.zeros((width, stride), dtype=np.float32)
    grads = np.zeros(P, dtype=np.float32)
    norms = np.zeros(width, dtype=np.float32)
    weight = np.zeros(bs, dtype=np.float32)
    n_out = ops[n_ops - 1, 6]
    patch_start, choice_start, n_patch, n_conv = _buffer_starts(ops, bs)
    patch_buffer = np.zeros(max(patch_start[n_ops], 1), dtype=np.float32)
    patch_gradients = np.zeros(n_patch, dtype=np.float32)
    conv_buffer = np.zeros(n_conv, dtype=np.float32)
    choice_buffer = np.zeros(max(choice_start[n_ops], 1), dtype=np.int32)
    beta_1, beta_2, adam_eps = adam[0], adam[1], adam[2]
    control = _get_mxcsr()
    _set_mxcsr(control | _FLUSH_DENORMALS)
    for k in range(K):
        pk = params[k]
        for s in range(T):
            base = s * bs
            if not active[k, s]:
                losses[k, s] = _ZERO
                hits[k, s] = _ZERO
                continue
            # The batch's rows.
            count = _ZERO
            x = acts[0]
            for r in range(bs):
                weight[r] = valid[k, base + r]
                count += weight[r]
                row = X[k, orders[k, base + r]]
                for f in range(F):
                    x[r, f] = row[f]
            count = max(count, _ONE)
            inv_count = _ONE / count

            # Forward.
            _forward(
                ops,
                p_off,
                pk,
                acts,
                bs,
                masks[k],
                base,
                scales[k],
                True,
                patch_buffer,
                patch_start,
                conv_buffer,
                choice_buffer,
                choice_start,
            )
            logits = acts[n_ops]

            # Each row's loss and the logits' gradient of the lanes' mean loss.
            total = _ZERO
            correct = _ZERO
            for r in range(bs):
                for c in range(ops[n_ops - 1, 3]):
                    g_cur[r, c] = _ZERO
            if binary:
                # sigmoid_cross_entropy_with_logits, and its gradient.
                for r in range(bs):
                    z = logits[r, 0]
                    y = Y[k, orders[k, base + r]]
                    positive = z >= _ZERO
                    relu_z = z if positive else _ZERO
                    neg_abs = -z if positive else z
                    e = np.float32(_exp(neg_abs))
                    loss = relu_z - z * y + np.float32(_log1p(e))
                    total += loss * weight[r]
                    g = inv_count * weight[r]
                    g_log = g * (_ONE / (_ONE + e)) * e
                    g_cur[r, 0] = (
                        ((g if positive else _ZERO) + (-g * y))
                        + (_ZERO if positive else g_log)
                    ) - (g_log if positive else _ZERO)
                    p = _ONE / (_ONE + np.float32(_exp(-z)))
                    if (_ONE if p > _HALF else _ZERO) == y:
                        correct += weight[r]
            else:
                # Sparse softmax cross-entropy, as TensorFlow's fused kernel.
                for r in range(bs):
                    y = Y[k, orders[k, base + r]]
                    label = int(y)
                    top = logits[r, 0]
                    best = 0
                    for c in range(1, n_out):
                        if logits[r, c] > top:
                            top = logits[r, c]
                            best = c
                    total_exp = _ZERO
                    for c in range(n_out):
                        e = np.float32(_exp(logits[r, c] - top))
                        g_cur[r, c] = e
                        total_exp += e
                    loss = np.float32(_log(total_exp)) - (
                        logits[r, label] - top
                    )
                    total += loss * weight[r]
                    g = inv_count * weight[r]
                    for c in range(n_out):
                        b = g_cur[r, c] / total_exp
                        if c == label:
                            b = b - _ONE
                        g_cur[r, c] = g * b
                    if np.float32(best) == y:
                        correct += weight[r]
            losses[k, s] = total
            hits[k, s] = correct

            # Backward: the gradient of every kernel and bias.
            for o in range(n_ops - 1, -1, -1):
                kind = ops[o, 0]
                if kind == 0:
                    d, fan_in, units = ops[o, 1], ops[o, 2], ops[o, 3]
                    kernel, bias = _layer(pk, p_off[d], fan_in, units)
                    d_kernel, d_bias = _layer(grads, p_off[d], fan_in, units)
                    if ops[o, 4] == 1:
                        out = acts[o + 1]
                        for r in range(bs):
                            for j in range(units):
                                if not out[r, j] > _ZERO:
                                    g_cur[r, j] = _ZERO
                    _product_backward(
                        acts[o],
                        g_cur,
                        kernel,
                        d_kernel,
                        d_bias,
                        wt,
                        g_next,
                        bs,
                        fan_in,
                        units,
                        d == 0,
                    )
                    if d == 0:
                        break
                    g_cur, g_next = g_next, g_cur
                elif kind == 1:
                    first, real = ops[o, 3], ops[o, 6]
                    scale = scales[k, ops[o, 1]]
                    for r in range(bs):
                        m_r = masks[k, base + r, first : first + real]
                        for c in range(real):
                            factor = scale if m_r[c] else _ZERO
                            g_cur[r, c] = g_cur[r, c] * factor
                elif kind == 2:
                    pixels, first, maps = ops[o, 2], ops[o, 3], ops[o, 6]
                    scale = scales[k, ops[o, 1]]
                    for r in range(bs):
                        m_r = masks[k, base + r, first : first + maps]
                        g_r = g_cur[r]
                        for q in range(pixels):
                            for c in range(maps):
                                factor = scale if m_r[c] else _ZERO
                                g_r[q * maps + c] = g_r[q * maps + c] * factor
                elif kind == 3:
                    d, height, width = ops[o, 1], ops[o, 2], ops[o, 3]
                    maps = ops[o, 7]
                    n_columns, n_units = ops[o, 10], ops[o, 11]
                    pixels = height * width
                    n_pixels = _pad_rows(pixels)
                    kernel, bias = _layer(pk, p_off[d], n_columns, n_units)
                    d_kernel, d_bias = _layer(
                        grads, p_off[d], n_columns, n_units
                    )
                    if ops[o, 4] == 1:
                        out = acts[o + 1]
                        for r in range(bs):
                            for c in range(pixels * maps):
                                if not out[r, c] > _ZERO:
                                    g_cur[r, c] = _ZERO
                    # The output gradient as the product's matrix: one row
                    # per pixel.
                    G = conv_buffer[: bs * n_pixels * n_units].reshape(
                        (bs * n_pixels, n_units)
                    )
                    for r in range(bs):
                        for q in range(n_pixels):
                            g_q = G[r * n_pixels + q]
                            if q < pixels:
                                for c in range(maps):
                                    g_q[c] = g_cur[r, q * maps + c]
                                for c in range(maps, n_units):
                                    g_q[c] = _ZERO
                            else:
                                for c in range(n_units):
                                    g_q[c] = _ZERO
                    patches = patch_buffer[
                        patch_start[o] : patch_start[o + 1]
                    ].reshape((bs * n_pixels, n_columns))
                    # The patches' gradient, then each patch number's share
                    # added back to the pixel it was copied from.
                    dP = patch_gradients[: bs * n_pixels * n_columns].reshape(
                        (bs * n_pixels, n_columns)
                    )
                    _product_backward(
                        patches,
                        G,
                        kernel,
                        d_kernel,
                        d_bias,
                        wt,
                        dP,
                        bs * n_pixels,
                        n_columns,
                        n_units,
                        d == 0,
                    )
                    if d == 0:
                        break
                    _add_back_patches(dP, g_next, bs, ops[o])
                    g_cur, g_next = g_next, g_cur
                else:
                    # MaxPooling2D: each output's gradient goes to the input
                    # it took (the first largest of its window).
                    height, width, maps = ops[o, 2], ops[o, 3], ops[o, 4]
                    n = (height // ops[o, 5]) * (width // ops[o, 6]) * maps
                    choice = choice_buffer[
                        choice_start[o] : choice_start[o + 1]
                    ].reshape((bs, n))
                    n_in = _pad_units(height * width * maps)
                    for r in range(bs):
                        g_r = g_next[r]
                        for c in range(n_in):
                            g_r[c] = _ZERO
                        c_r = choice[r]
                        for c in range(n):
                            g_r[c_r[c]] = g_cur[r, c]
                    g_cur, g_next = g_next, g_cur

            # The optimizer's update.
            lr = learning_rate[k]
            if inverse_time:
                lr = lr / (_ONE + decay_rate[k] * (t[k] / decay_steps[k]))
            t_next = t[k] + _ONE
            if optimizer == 1:
                mom = momentum[k]
                m_k = slots[k, 0]
                for p in range(P):
                    m = m_k[p] * mom - grads[p] * lr
                    m_k[p] = m
                    pk[p] = pk[p] + m
            elif optimizer == 0:
                for p in range(P):
                    pk[p] = pk[p] - grads[p] * lr
            else:
                b1_power = np.float32(_exp(t_next * _log(beta_1)))
                b2_power = np.float32(_exp(t_next * _log(beta_2)))
                alpha = (
                    lr
                    * np.float32(math.sqrt(_ONE - b2_power))
                    / (_ONE - b1_power)
                )
                one_minus_b1 = _ONE - beta_1
                one_minus_b2 = _ONE - beta_2
                m_k = slots[k, 0]
                v_k = slots[k, 1]
                for p in range(P):
                    gp = grads[p]
                    m = m_k[p] + (gp - m_k[p]) * one_minus_b1
                    v = v_k[p] + (gp * gp - v_k[p]) * one_minus_b2
                    m_k[p] = m
                    v_k[p] = v
                    pk[p] = pk[p] - (m * alpha) / (
                        np.float32(math.sqrt(v)) + adam_eps
                    )
            t[k] = t_next

            # MaxNorm, after the update as in Keras.
            for o in range(n_ops):
                if ops[o, 0] == 0 and ops[o, 5] >= 0:
                    fan_in, units = ops[o, 2], ops[o, 3]
                elif ops[o, 0] == 3 and ops[o, 5] >= 0:
                    # (each filter's weights are a column of the reshaped kernel)
                    fan_in, units = ops[o, 10], ops[o, 11]
                else:
                    continue
                kernel, _ = _layer(pk, p_off[ops[o, 1]], fan_in, units)
                limit = limits[k, ops[o, 5]]
                for j in range(units):
                    norms[j] = _ZERO
                for i in range(fan_in):
                    row = kernel[i]
                    for j in range(units):
                        norms[j] += row[j] * row[j]
                for j in range(units):
                    norm = np.float32(math.sqrt(norms[j]))
                    desired = min(max(norm, _ZERO), limit)
                    norms[j] = desired / (eps + norm)
                for i in range(fan_in):
                    row = kernel[i]
                    for j in range(units):
                        row[j] = row[j] * norms[j]
    _set_mxcsr(control)


@numba.njit(cache=True, error_model="numpy", boundscheck=False)
def predict_rows(ops, p_off, params, X, binary, width, out):
    """The network's output for every row of ``X``, dropout off (inference).

    ``params`` is one network's flat parameters (as one lane of
    :func:`train_lanes`); ``out[i]`` receives row i's sigmoid probability
    (``binary``) or its softmax probabilities, computed as Keras' layers
    compute them (the softmax after subtracting the row's largest logit),
    with this module's ``exp``: the same numbers on every x86-64 CPU.
    """
    n = X.shape[0]
    F = X.shape[1]
    n_ops = ops.shape[0]
    n_out = ops[n_ops - 1, 6]
    bs = 8 * ROW_BLOCK
    acts = np.zeros((n_ops + 1, bs, width + 2 * UNIT_BLOCK), dtype=np.float32)
    patch_start, choice_start, n_patch, n_conv = _buffer_starts(ops, bs)
    patch_buffer = np.zeros(max(patch_start[n_ops], 1), dtype=np.float32)
    conv_buffer = np.zeros(n_conv, dtype=np.float32)
    choice_buffer = np.zeros(max(choice_start[n_ops], 1), dtype=np.int32)
    no_masks = np.zeros((1, 1), dtype=np.bool_)
    no_scales = np.zeros(1, dtype=np.float32)
    control = _get_mxcsr()
    _set_mxcsr(control | _FLUSH_DENORMALS)
    for start in range(0, n, bs):
        rows = min(bs, n - start)
        x = acts[0]
        for r in range(bs):
            for f in range(F):
                x[r, f] = X[start + r, f] if r < rows else _ZERO
        _forward(
            ops,
            p_off,
            params,
            acts,
            bs,
            no_masks,
            0,
            no_scales,
            False,
            patch_buffer,
            patch_start,
            conv_buffer,
            choice_buffer,
            choice_start,
        )
        logits = acts[n_ops]
        for r in range(rows):
            if binary:
                z = logits[r, 0]
                out[start + r, 0] = _ONE / (_ONE + np.float32(_exp(-z)))
                continue
            top = logits[r, 0]
            for c in range(1, n_out):
                top = max(top, logits[r, c])
            total = _ZERO
            for c in range(n_out):
                e = np.float32(_exp(logits[r, c] - top))
                out[start + r, c] = e
                total += e
            for c in range(n_out):
                out[start + r, c] = out[start + r, c] / total
    _set_mxcsr(control)
