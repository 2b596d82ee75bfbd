from . import add


def calls(model, node):
    return add.calls(model, node, sign=-1)
