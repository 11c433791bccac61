"""A network defined outside the package, for the plug-in tests (arch: module)."""

from torch import nn


def strided_cnn(width: int = 8, stride: int = 8) -> nn.Module:
    """Images B x 3 x H x W to B x width x H/stride x W/stride features."""
    layers, channels, scale = [], 3, 1
    while scale < stride:
        layers += [nn.Conv2d(channels, width, 3, 2, 1), nn.ReLU()]
        channels, scale = width, scale * 2
    return nn.Sequential(*layers, nn.Conv2d(channels, width, 3, 1, 1), nn.ReLU())


def flat_output() -> nn.Module:
    """A module whose output is not a feature map (refused)."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())


def not_a_module():
    return "no"
