"""Array bundles: a named tuple of arrays that a jitted kernel receives as one pointer.

Numba passes every array argument as its whole structure, seven machine words for a 1-d array
(data, shape, strides, item size, size, and the two owner pointers) and nine for a 2-d one: the
loop's kernels take two dozen arrays each, so a call copied ~190 words through the stack, and
those copies were most of the loop's own instructions per order, and much of the code the
caches had to hold per order (benchmarks/PERFORMANCE.md, 3 December, late night). A bundle is
the arrays stored once, in the stack frame of the function that makes it; a kernel receives its
address, one word, and reads only the fields it uses (``lp.orders``: the data pointer and the
shape, loaded where needed; LLVM may load them again at will, as they never change).

The arrays in a bundle have no owner (as :func:`tickguard.engine.unmanaged.unmanaged` makes
them): no reference counting on any use. So a bundle must never outlive the call that made it
(never return or store one), and its maker's caller must keep the arrays alive: the loop's
caller (Python) does, for the whole call.

Under ``NUMBA_DISABLE_JIT`` (the pure-Python twin) :func:`bundle` returns the named tuple itself,
whose attributes read the same.
"""

from __future__ import annotations

import hashlib
from typing import Any

from llvmlite import ir
from numba import config as numba_config
from numba.core import cgutils, types
from numba.core.datamodel import models
from numba.extending import intrinsic, lower_getattr_generic, register_model
from numba.core.typing.templates import AttributeTemplate, infer_getattr

__all__ = ["ArrayBundle", "bundle"]


class ArrayBundle(types.Type):
    """The type of a bundle: its fields' names and array types, in the named tuple's order."""

    def __init__(self, names: tuple[str, ...], members: tuple[types.Array, ...]) -> None:
        self.names = tuple(names)
        self.members = tuple(members)
        fields = ", ".join(f"{n}: {m}" for n, m in zip(self.names, self.members))
        # the name is the type's identity (numba compares and caches types by it) and goes into
        # the symbol of every function taking it: a digest of the fields, not the fields (the
        # loop's 28 spelled out in its symbols were ~0.1 MB of its LLVM IR)
        digest = hashlib.blake2b(fields.encode(), digest_size=8).hexdigest()
        super().__init__(name=f"ArrayBundle({len(self.names)}, {digest})")

    @classmethod
    def of(cls, tuple_class: Any, members: Any) -> "ArrayBundle":
        """The bundle type of ``tuple_class`` (a named tuple class) with these array types."""
        return cls(tuple_class._fields, tuple(members))


def _layout(context, bundle_type):  # noqa: ANN001, ANN202
    """The structure of the members' values, and each member's byte offset in it."""
    struct = ir.LiteralStructType([context.get_value_type(m) for m in bundle_type.members])
    offsets = [struct.get_element_offset(context.target_data, k) for k in range(len(struct.elements))]
    return struct, offsets


@register_model(ArrayBundle)
class _ArrayBundleModel(models.PrimitiveModel):
    """The structure's address as a byte pointer: a literal structure type of 28 arrays, spelled
    out in every access's IR, made the loop's LLVM IR a third larger (the compile reads it all)."""

    def __init__(self, dmm, fe_type):  # noqa: ANN001
        super().__init__(dmm, fe_type, ir.IntType(8).as_pointer())


@intrinsic
def bundle(typingctx, arrays):  # noqa: ANN001
    """The arrays of the named tuple ``arrays``, stored once in this frame (see the module doc)."""
    if not isinstance(arrays, types.NamedTuple) or not all(
        isinstance(m, types.Array) for m in arrays.types
    ):
        return None
    bundle_type = ArrayBundle(arrays.fields, tuple(arrays.types))

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        struct, _ = _layout(context, bundle_type)
        slot = cgutils.alloca_once(builder, struct)  # in the entry block: one per frame
        for k, member in enumerate(bundle_type.members):
            view = cgutils.create_struct_proxy(member)(
                context, builder, value=builder.extract_value(args[0], k)
            )
            view.meminfo = cgutils.get_null_value(view.meminfo.type)  # no owner: no refcounts
            view.parent = cgutils.get_null_value(view.parent.type)
            builder.store(view._getvalue(), cgutils.gep_inbounds(builder, slot, 0, k))
        return builder.bitcast(slot, ir.IntType(8).as_pointer())

    return bundle_type(arrays), codegen


@infer_getattr
class _ArrayBundleAttributes(AttributeTemplate):
    key = ArrayBundle

    def generic_resolve(self, typ, attr):  # noqa: ANN001, ANN201
        if attr in typ.names:
            return typ.members[typ.names.index(attr)]
        return None


@lower_getattr_generic(ArrayBundle)
def _bundle_getattr(context, builder, typ, value, attr):  # noqa: ANN001, ANN201
    k = typ.names.index(attr)
    ty = context.get_value_type(typ.members[k])
    model = context.data_model_manager[typ.members[k]]
    owner = {model.get_field_position("meminfo"), model.get_field_position("parent")}
    _, offsets = _layout(context, typ)
    field = builder.bitcast(builder.gep(value, [ir.Constant(ir.IntType(64), offsets[k])], inbounds=True),
                            ty.as_pointer())
    # one load of the whole structure, marked invariant (the memory never changes while the
    # bundle lives: LLVM drops the fields nobody reads and may load the others again at will),
    # then the owner fields set null, a constant: no reference counting to emit or fold away
    load = builder.load(field)
    load.set_metadata("invariant.load", builder.module.add_metadata([]))
    out = load
    for m in sorted(owner):
        out = builder.insert_value(out, ir.Constant(ty.elements[m], None), m)
    return out


if numba_config.DISABLE_JIT:  # the pure-Python twin: the named tuple is the bundle

    def bundle(arrays: Any) -> Any:  # type: ignore[no-redef]
        """The named tuple itself (pure-Python twin)."""
        return arrays
