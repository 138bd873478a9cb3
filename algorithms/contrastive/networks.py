"""Encoders and heads: a small CNN for digits/MNIST on CPU, ResNet-18 for CIFAR-10 on GPUs."""

from __future__ import annotations

from torch import nn

ENCODERS = ("cnn", "resnet18")


class SmallCNN(nn.Module):
    """Four 3x3 conv layers with BatchNorm, two stride-2, then global average pooling."""

    def __init__(self, in_channels: int, width: int = 32, out_dim: int = 128):
        super().__init__()

        def block(cin, cout, stride):
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.net = nn.Sequential(*block(in_channels, width, 1), *block(width, 2 * width, 2),
                                 *block(2 * width, 4 * width, 2), *block(4 * width, out_dim, 1),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = out_dim

    def forward(self, x):
        return self.net(x)


class ResNet18(nn.Module):
    """torchvision's ResNet-18 with the CIFAR stem (3x3 conv, no max-pool) and no classifier."""

    def __init__(self, in_channels: int):
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.net = net
        self.out_dim = 512

    def forward(self, x):
        return self.net(x)


def build_encoder(name: str, in_channels: int, width: int, out_dim: int) -> nn.Module:
    if name == "cnn":
        return SmallCNN(in_channels, width, out_dim)
    if name == "resnet18":
        return ResNet18(in_channels)
    raise ValueError(f"unknown encoder {name!r}; allowed: {', '.join(ENCODERS)}")


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2, last_bn: bool = False) -> nn.Sequential:
    """Linear-BN-ReLU blocks then a Linear (SimCLR/MoCo v2 projection, BYOL/SimSiam heads)."""
    modules, dim = [], in_dim
    for _ in range(layers - 1):
        modules += [nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU()]
        dim = hidden
    modules.append(nn.Linear(dim, out_dim))
    if last_bn:
        modules.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*modules)
