"""The default demo: a small CNN on scikit-learn's 8x8 handwritten digits (real labels, shipped with sklearn).

Its weights ship as ``intonly/assets/digits_cnn.pt`` (a plain state_dict, loaded with weights_only=True).
Retrain them with ``python -m intonly.demos.digits`` (deterministic: fixed seeds, CPU, about a minute).
The network exercises every CNN op of the spine: regular, depthwise and dilated convolutions with
folded BatchNorm, ReLU / ReLU6 / Hardtanh, a residual add, max and average pooling, concat,
a spatial flatten and a linear classifier.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

WEIGHTS = Path(__file__).resolve().parent.parent / "assets" / "digits_cnn.pt"
SPLIT_SEED = 0
TEST_FRACTION = 0.3


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16),
                                nn.ReLU6())
        self.pw = nn.Sequential(nn.Conv2d(16, 16, 1, bias=False), nn.BatchNorm2d(16))
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.branch_a = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.branch_b = nn.Sequential(nn.Conv2d(16, 16, 3, padding=2, dilation=2), nn.Hardtanh(-2.0, 2.0))
        self.down = nn.Sequential(nn.Conv2d(32, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32),
                                  nn.ReLU())
        self.smooth = nn.AvgPool2d(3, stride=1, padding=1)
        self.fc = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x):
        x = self.stem(x)
        x = self.relu(x + self.pw(self.dw(x)))
        x = self.pool(x)
        x = torch.cat([self.branch_a(x), self.branch_b(x)], dim=1)
        x = self.smooth(self.down(x))
        return self.fc(torch.flatten(x, 1))


def load_split():
    """``(x_train, y_train, x_test, y_test)``: digits scaled to [0, 1] as N x 1 x 8 x 8 float32."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, digits.target.astype(np.int64), test_size=TEST_FRACTION,
                                              random_state=SPLIT_SEED, stratify=digits.target)
    return x_tr, y_tr, x_te, y_te


def load_model() -> DigitsCNN:
    model = DigitsCNN()
    model.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    return model.eval()


def train(epochs: int = 60, seed: int = 0) -> DigitsCNN:
    torch.manual_seed(seed)
    x_tr, y_tr, x_te, y_te = load_split()
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        acc = (model(torch.from_numpy(x_te)).argmax(1).numpy() == y_te).mean()
    print(f"digits CNN test accuracy {100 * acc:.2f}% ({len(y_te)} test images)")
    return model


if __name__ == "__main__":
    trained = train()
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    torch.save(trained.state_dict(), WEIGHTS)
    print(f"wrote {WEIGHTS}")
