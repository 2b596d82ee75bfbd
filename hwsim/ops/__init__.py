"""hwsim's executor for each IR op: ``hwsim/ops/<op>.py``, found by the op's name.

Each op module exposes ``run(model, node, inputs, ctx) -> ndarray`` (the bit-accurate kernel) and
``work(model, node) -> {op class: count}`` (what one sample costs, for the cost model; helpers in
:mod:`intonly.hwsim.work`). ``inputs`` are batched arrays (batch first, then the tensor's per-sample shape);
``ctx`` is the executor's :class:`intonly.hwsim.executor.OpContext` (rounding mode, fast-path switch, the node's
trace record). Modules starting with ``_`` hold shared kernels. Adding an op to hwsim is adding
``hwsim/ops/<op>.py``.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

IMPLEMENTED = frozenset(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


@functools.cache
def executor(op: str):
    """The module ``hwsim/ops/<op>.py`` (with ``run`` and ``work``), or None when hwsim has none for ``op``."""
    return importlib.import_module(f"{__name__}.{op}") if op in IMPLEMENTED else None
