import pytest
import torch

from saldissect.models import ResNetBackbone, get_model, resnet_grid, torchvision_cached_weights

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
    weights = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    trunk.load_state_dict(weights)  # ... and shape


def test_our_bottleneck_computes_what_torchvisions_does():
    from torchvision.models.resnet import Bottleneck as Reference

    from saldissect.models import Bottleneck

    torch.manual_seed(0)
    downsample = torch.nn.Sequential(
        torch.nn.Conv2d(32, 64, 1, stride=2, bias=False), torch.nn.BatchNorm2d(64)
    )
    reference = Reference(32, 16, stride=2, downsample=downsample, dilation=2).eval()
    ours = Bottleneck(32, 16, stride=2, downsample=downsample, dilation=2).eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 32, 12, 12)
    torch.testing.assert_close(ours(x), reference(x))


def test_bad_options_are_rejected_at_construction():
    with pytest.raises(ValueError, match="unknown architecture"):
        get_model("vgg")
    with pytest.raises(ValueError, match="same length"):
        ResNetBackbone(layers=[1, 1], widths=[8])
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        get_model("dinet", weights="/nonexistent/missing.pth", **SMALL)


TINY_TRUNK = {"block": "basic", "layers": [1, 1, 1, 1], "widths": [8, 8, 16, 16], "stem_width": 8}
ARCHITECTURES = {
    "dinet": ({"encoder_channels": 16, "encoder_dilations": [1, 2, 4]}, 16, 8),
    "salicon": ({"scale_channels": 8}, 16, 8),
    "transalnet": (
        {
            "transformer_dims": [16, 16, 24],
            "transformer_heads": [2, 2, 4],
            "decoder_channels": 12,
            "input_size": [64, 80],
        },
        12,
        2,
    ),
}


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("head", ["plain", "factorised", "reformulated"])
def test_every_architecture_and_head_runs_forward_and_backward(arch, head):
    options, channels, stride = ARCHITECTURES[arch]
    torch.manual_seed(0)
    model = get_model(arch, head=head, backbone=TINY_TRUNK, n_bases=10, **options)
    assert model.features.out_channels == channels and model.features.stride == stride
    out = model(torch.randn(2, 3, 64, 80))
    assert out["saliency"].shape == (2, 1, 64, 80)
    assert 0 <= out["saliency"].min() and out["saliency"].max() <= 1
    if head != "plain":
        assert out["prob"].shape == (2, 10, 64 // stride, 80 // stride)  # the feature grid
    out["saliency"].mean().backward()
    trained = [n for n, p in model.named_parameters() if p.grad is not None]
    assert any(n.startswith("features.backbone.") for n in trained)
    assert ("bases.weight" in trained) == (head != "plain")


def test_salicon_concatenates_fine_and_coarse_scales():
    options, _, _ = ARCHITECTURES["salicon"]
    model = get_model("salicon", backbone=TINY_TRUNK, **options).eval()
    features = model.features(torch.randn(1, 3, 64, 80))
    assert features.shape == (1, 16, 8, 10)
    # the coarse half sees the half-size image: zeroing its conv leaves only the fine half
    torch.nn.init.zeros_(model.features.coarse[0].weight)
    torch.nn.init.zeros_(model.features.coarse[0].bias)
    assert model.features(torch.randn(1, 3, 64, 80))[:, 8:].abs().max() == 0


def test_transalnet_paper_grids_and_position_embeddings():
    assert [resnet_grid(240, s) for s in (8, 16, 32)] == [30, 15, 8]
    assert [resnet_grid(320, s) for s in (8, 16, 32)] == [40, 20, 10]
    model = get_model("transalnet", head="plain", input_size=[240, 320])
    embeddings = [e.position.shape for e in model.features.encoders]
    assert embeddings == [(1, 1200, 512), (1, 300, 768), (1, 80, 768)]
    assert not any(
        m.dilation != (1, 1)
        for m in model.features.backbone.modules()
        if isinstance(m, torch.nn.Conv2d)
    )
    options, _, _ = ARCHITECTURES["transalnet"]
    small = get_model("transalnet", backbone=TINY_TRUNK, **options)
    with pytest.raises(ValueError, match="input_size"):
        small(torch.randn(1, 3, 96, 128))


def test_backbone_weights_load_from_a_local_file_and_never_download(tmp_path, monkeypatch):
    trunk = ResNetBackbone(**TINY_TRUNK)
    path = tmp_path / "trunk.pth"
    torch.save({**trunk.state_dict(), "fc.weight": torch.zeros(3)}, path)
    model = get_model("salicon", backbone=TINY_TRUNK, weights=str(path), scale_channels=8)
    for name, value in trunk.state_dict().items():
        assert torch.equal(model.features.backbone.state_dict()[name], value)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    assert torchvision_cached_weights().parent == tmp_path / "empty-cache/hub/checkpoints"
    with pytest.raises(
        FileNotFoundError, match="not in torchvision's cache. Nothing is downloaded"
    ):
        get_model("dinet", weights="torchvision", **SMALL)
    with pytest.raises(ValueError, match="do not fit"):
        get_model("dinet", weights=str(path), backbone={**TINY_TRUNK, "widths": [8, 8, 16, 32]})
