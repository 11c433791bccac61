"""The popcount counting path's inner product, compiled for the running CPU.

`and_popcounts` counts the set bits of every basis word AND-ed with every
concept word: an N x W by K x W "product" in which multiply is AND and add is
popcount. numba compiles it with LLVM for the CPU it runs on, and LLVM
vectorises the popcount with the best instructions that CPU has (AVX512's
``vpopcntq`` where present, else a byte-table lookup in AVX2 registers), so
this path is fast on any x86-64 CPU without assuming a feature. It releases
the GIL, so images count side by side in threads. Compiled on first use and
cached on disk (numba's cache: beside this file, or a per-user folder where
that is read-only).

Imported only by `saldissect.analysis.dissection` when the popcount path runs, so
importing the package does not load numba.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic


@intrinsic
def _popcount(typingctx, word):
    """LLVM's ``ctpop`` of a 64-bit word (numba has no popcount of its own)."""

    def codegen(context, builder, signature, args):
        ctpop = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(ctpop, args)

    return types.uint64(types.uint64), codegen


@numba.njit(nogil=True, cache=True)
def and_popcounts(
    words: np.ndarray, concept_words: np.ndarray, inter: np.ndarray, ones: np.ndarray
) -> None:
    """``inter[n, k] = popcount(words[n] & concept_words[k])`` and
    ``ones[n] = popcount(words[n])``, summed over the W words of a row.

    ``words`` N x W and ``concept_words`` K x W uint64 (C-contiguous); ``inter``
    N x K and ``ones`` N, written in place.
    """
    n_rows, n_words = words.shape
    for n in range(n_rows):
        total = np.uint64(0)
        for w in range(n_words):
            total += _popcount(words[n, w])
        ones[n] = total
        for k in range(concept_words.shape[0]):
            total = np.uint64(0)
            for w in range(n_words):
                total += _popcount(words[n, w] & concept_words[k, w])
            inter[n, k] = total
