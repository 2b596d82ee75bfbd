from ..shared_calls import softmax_call


def calls(model, node):
    return softmax_call(model, node, ())
