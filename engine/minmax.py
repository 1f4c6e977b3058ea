"""``min2`` and ``max2``: Python's ``min(a, b)`` and ``max(a, b)`` of two numbers, for kernels.

Numba's builtin ``min``/``max`` are overloads: the first call for each pair of argument types
compiles a small function of its own (~20 ms each, a full pipeline and an LLVM module), which LLVM
then inlines. The engine's kernels met ten such pairs in every cold compile (0.2 s of ~9 s,
benchmarks/compile_profile.py). These are lowered in place instead, to the same compare and
select, with Python's rule for ties and NaN: the first argument unless the second is strictly
smaller (larger), so ``min2(nan, 1.0)`` is NaN and ``min2(1.0, nan)`` is 1.0, as with ``min``.
Both arguments are converted to their common numba type first, as numba's ``min`` does.
Likewise the kernels write ``np.int64(x)``, a direct cast, where ``int(x)`` (also an overload)
compiled a function per argument type. tests/engine/test_minmax.py keeps the builtins out of
the engine's kernels.
"""

from __future__ import annotations

import operator

from numba import config as numba_config
from numba import types
from numba.core.extending import intrinsic
from numba.core.typing import signature

__all__ = ["max2", "min2"]


def _typed(typingctx, a, b, op):  # noqa: ANN001, ANN202
    """Signature and lowering returning the second argument where ``op(second, first)``, else
    the first, both converted to their common type."""
    if not all(isinstance(t, (types.Number, types.Boolean)) for t in (a, b)):
        return None
    ty = typingctx.unify_types(a, b)
    if ty is None:
        return None
    ty = types.unliteral(ty)

    def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
        x = context.cast(builder, args[0], a, ty)
        y = context.cast(builder, args[1], b, ty)
        cmp = context.get_function(op, signature(types.boolean, ty, ty))
        return builder.select(cmp(builder, (y, x)), y, x)

    return ty(a, b), codegen


@intrinsic
def min2(typingctx, a, b):
    """``min(a, b)`` of two numbers, lowered in place (see the module docstring)."""
    return _typed(typingctx, a, b, operator.lt)


@intrinsic
def max2(typingctx, a, b):
    """``max(a, b)`` of two numbers, lowered in place (see the module docstring)."""
    return _typed(typingctx, a, b, operator.gt)


if numba_config.DISABLE_JIT:  # the pure-Python twin: the builtins themselves

    def min2(a, b):  # type: ignore[no-redef]  # noqa: ANN001, ANN201
        """``min(a, b)``."""
        return min(a, b)

    def max2(a, b):  # type: ignore[no-redef]  # noqa: ANN001, ANN201
        """``max(a, b)``."""
        return max(a, b)
