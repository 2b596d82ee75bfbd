"""One module per IR op: ``calls(model, node) -> list[KernelCall]`` (see :mod:`codegen.c.calls`)."""
