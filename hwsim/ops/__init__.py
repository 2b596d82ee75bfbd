"""One module per IR op. Each exposes ``run(model, node, inputs, ctx) -> ndarray``.

``inputs`` are batched arrays (batch first, then the tensor's per-sample shape); ``ctx`` is the
executor's :class:`hwsim.executor.OpContext` (rounding mode, fast-path switch, the node's trace
record). Adding an op to hwsim is adding ``hwsim/ops/<op>.py``.
"""
