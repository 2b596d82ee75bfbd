"""The ViT demo: a small Vision Transformer (timm parameter names) on scikit-learn's 8x8 handwritten digits.

Same data and split as the CNN demo (:func:`intonly.demos.digits.load_split`). Its weights ship as
``intonly/assets/vit_digits.pt`` (a plain state_dict, loaded with weights_only=True). Retrain them with
``python -m intonly.demos.vit_digits`` (deterministic: fixed seeds, CPU, about two minutes on two cores).
The network (:func:`intonly.models.vit.vit_digits`) exercises every transformer op of the spine: a patch
embedding, class-token concat, position-embedding add, LayerNorm, multi-head attention with softmax,
exact-erf GELU, residual adds and the class-token slice before the classifier.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from intonly.demos.digits import load_split
from intonly.models.vit import VisionTransformer, vit_digits

WEIGHTS = Path(__file__).resolve().parent.parent / "assets" / "vit_digits.pt"


def load_model() -> VisionTransformer:
    model = vit_digits()
    model.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    return model.eval()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return 100.0 * float((pred == y).mean())


def random_shift(x: torch.Tensor, gen: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels in each direction (zero fill), independently per image."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None].expand(n, x.shape[1], h, w + 2 * max_shift)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :].expand(n, x.shape[1], h, w)
    return out.gather(3, cols)


def augment(x: torch.Tensor, gen: torch.Generator, p_shift: float = 0.5) -> torch.Tensor:
    """Shift a random half of the images by up to one pixel. A one-pixel shift moves content across the
    2-pixel patch grid, so shifting every image makes the task too hard for this small ViT to fit."""
    shifted = random_shift(x, gen)
    keep = torch.rand(len(x), generator=gen) >= p_shift
    shifted[keep] = x[keep]
    return shifted


def train(epochs: int = 100, seed: int = 0) -> VisionTransformer:
    """AdamW (weight decay on matrices only), one-cycle LR, label smoothing 0.1, mixup (alpha 0.3) and random
    one-pixel shifts: ViTs have little inductive bias and overfit 1257 digits without them (~96 % test)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # reproducible reductions; the matrices are tiny, more threads only contend
    try:
        return _train(epochs, seed)
    finally:
        torch.set_num_threads(threads)


def _train(epochs: int, seed: int, lr: float = 2e-3, batch: int = 64, mixup: float = 0.3) -> VisionTransformer:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_tr, y_tr, x_te, y_te = load_split()
    model = vit_digits()

    def decayed(name: str, p: torch.Tensor) -> bool:
        return p.ndim >= 2 and name not in ("cls_token", "pos_embed")

    groups = [{"params": [p for n, p in model.named_parameters() if decayed(n, p)], "weight_decay": 0.05},
              {"params": [p for n, p in model.named_parameters() if not decayed(n, p)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    steps_per_epoch = (len(xt) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xt), generator=gen).split(batch):
            xb, yb = augment(xt[idx], gen), yt[idx]
            lam = float(rng.beta(mixup, mixup))
            perm = torch.randperm(len(idx), generator=gen)
            out = model(lam * xb + (1 - lam) * xb[perm])
            loss = lam * nn.functional.cross_entropy(out, yb, label_smoothing=0.1) + \
                (1 - lam) * nn.functional.cross_entropy(out, yb[perm], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    print(f"digits ViT test accuracy {accuracy(model, x_te, y_te):.2f}% ({len(y_te)} test images)")
    return model


if __name__ == "__main__":
    import time

    start = time.perf_counter()
    trained = train()
    print(f"trained in {time.perf_counter() - start:.0f} s")
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    torch.save(trained.state_dict(), WEIGHTS)
    print(f"wrote {WEIGHTS}")
