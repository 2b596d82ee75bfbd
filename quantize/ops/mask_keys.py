"""mask_keys: attention scores whose key is masked out (mask 0) set to the score type's minimum, the rest kept."""

from ._opdef import OpDef


def shape(attrs, in_shapes, params):
    scores, mask = in_shapes
    if len(mask) != 1 or scores[-1] != mask[0]:
        raise ValueError(f"mask {mask} does not match the key axis of scores {scores}")
    return scores


OP = OpDef(name="mask_keys", summary="attention mask: masked keys' scores to the minimum",
           definition="docs/transformer-ops.md#mask_keys", n_inputs=2, attrs={}, shape=shape)
