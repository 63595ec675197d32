"""The paper CNN: layer order, sizes for 28x28x1 and 32x32x3 inputs, argument checks."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from adlcodec.models import PaperCNN, build_model  # noqa: E402


@pytest.mark.parametrize("kwargs, shape, params", [
    ({}, (1, 28, 28), 862_218),
    (dict(in_channels=3, image_size=32), (3, 32, 32), 1_108_554),
    (dict(in_channels=3, image_size=32, num_classes=100), (3, 32, 32), 1_131_684),
])
def test_output_shape_and_documented_parameter_counts(kwargs, shape, params):
    model = build_model(**kwargs).eval()
    out = model(torch.zeros(4, *shape))
    assert out.shape == (4, kwargs.get("num_classes", 10))
    assert sum(p.numel() for p in model.parameters()) == params


def test_layer_order_follows_the_paper():
    kinds = [type(m) for m in PaperCNN().modules() if not isinstance(m, (nn.Sequential, PaperCNN, nn.Flatten))]
    assert kinds == [
        nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.BatchNorm2d,  # conv 32 + ReLU -> pool -> BN
        nn.Conv2d, nn.ReLU, nn.BatchNorm2d, nn.MaxPool2d,  # two more conv + BN blocks
        nn.Conv2d, nn.ReLU, nn.BatchNorm2d,
        nn.Dropout, nn.Linear, nn.ReLU, nn.BatchNorm1d, nn.Dropout, nn.Linear,  # dropout, linear, BN, linear
    ]
    model = PaperCNN()
    assert model.features[0].out_channels == 32
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.25, 0.5]


def test_dropout_is_active_only_in_training():
    torch.manual_seed(0)
    model, x = PaperCNN(), torch.randn(8, 1, 28, 28)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_classes=1), "num_classes"), (dict(width=0), "positive"), (dict(dropout=1.0), "dropout"),
    (dict(dropout_hidden=-0.1), "dropout_hidden"), (dict(image_size=30), "multiple of 4"),
    (dict(in_channels=0), "in_channels"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PaperCNN(**kwargs)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet")


def test_wrong_input_shape_is_rejected():
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\)"):
        PaperCNN(in_channels=3, image_size=32)(torch.zeros(2, 1, 28, 28))
