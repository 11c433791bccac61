import pytest
import torch

from saldissect.models import ResNetBackbone, get_model

SMALL = {
    "backbone": {
        "block": "basic",
        "layers": [1, 1, 1, 1],
        "widths": [8, 8, 16, 16],
        "stem_width": 8,
    },
    "encoder_channels": 16,
    "encoder_dilations": [1, 2, 4],
    "n_bases": 12,
}


@pytest.mark.parametrize("head", ["plain", "factorised", "reformulated"])
def test_dinet_heads_shapes_and_range(head):
    model = get_model("dinet", head=head, **SMALL)
    out = model(torch.randn(2, 3, 64, 80))
    assert out["saliency"].shape == (2, 1, 64, 80)
    assert 0 <= out["saliency"].min() and out["saliency"].max() <= 1
    if head == "plain":
        assert "prob" not in out
    else:
        assert out["prob"].shape == (2, 12, 8, 10)  # output stride 8


def test_factorised_head_reconstructs_features_from_bases():
    model = get_model("dinet", **SMALL)
    prob = torch.rand(1, 12, 3, 4)
    expected = sum(prob[0, n, None] * model.bases.weight[n].view(-1, 1, 1) for n in range(12))
    assert torch.allclose(model.reconstruct(prob)[0], expected, atol=1e-6)


def test_phase_two_trains_only_the_reformulated_conv():
    model = get_model("dinet", head="reformulated", **SMALL)
    params = model.freeze_for_phase2()
    assert params == [model.reformulated.weight]
    assert model.reformulated.bias is None
    model(torch.randn(2, 3, 64, 80))["saliency"].mean().backward()
    assert model.reformulated.weight.grad is not None
    assert all(p.grad is None for n, p in model.named_parameters() if n != "reformulated.weight")
    assert torch.allclose(model.basis_weights(), model.reformulated.weight.sum(dim=(0, 2, 3)))


def test_full_size_backbone_is_resnet50_with_output_stride_8():
    trunk = ResNetBackbone()
    assert trunk.out_channels == 2048 and trunk.stride == 8
    import torchvision

    reference = torchvision.models.resnet50(weights=None)
    ours = set(trunk.state_dict())
    theirs = {k for k in reference.state_dict() if not k.startswith("fc.")}
    assert ours == theirs  # ImageNet weights load by name


def test_bad_options_are_rejected_at_construction():
    with pytest.raises(ValueError, match="unknown architecture"):
        get_model("vgg")
    with pytest.raises(ValueError, match="same length"):
        ResNetBackbone(layers=[1, 1], widths=[8])
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        get_model("dinet", weights="/nonexistent/missing.pth", **SMALL)
