import pytest
import torch
import torch.nn.functional as nnf

from saldissect.models.networks import (
    ResNetBackbone,
    get_model,
    resnet_grid,
    torchvision_cached_weights,
)

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

    from saldissect.models.networks import Bottleneck

    torch.manual_seed(0)
    downsample = torch.nn.Sequential(
        torch.nn.Conv2d(32, 64, 1, stride=2, bias=False), torch.nn.BatchNorm2d(64)
    )
    reference = Reference(32, 16, stride=2, downsample=downsample, dilation=2).eval()
    ours = Bottleneck(
        32, 16, stride=2, downsample=downsample, dilation=2, style="torchvision"
    ).eval()
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
    with pytest.raises(ValueError, match="unknown trunk 'caffe'"):
        get_model("dinet", trunk="caffe", **SMALL)
    with pytest.raises(ValueError, match="unknown upsample 'bicubic'"):
        get_model("transalnet", upsample="bicubic", input_size=[64, 80], backbone=TINY_TRUNK)


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


def test_salicon_shares_one_conv_and_concatenates_coarse_then_fine():
    options, _, _ = ARCHITECTURES["salicon"]
    model = get_model("salicon", backbone=TINY_TRUNK, **options).eval()
    assert isinstance(model.features.encoder, torch.nn.Conv2d)  # one conv, no ReLU
    assert model.features.encoder.bias is not None
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        features = model.features(x)
        encode = model.features.encoder
        fine = encode(model.features.backbone(x))
        coarse = encode(model.features.backbone(x[..., ::2, ::2]))  # nearest half size
    assert features.shape == (1, 16, 8, 10)
    torch.testing.assert_close(features[:, 8:], fine)
    # the coarse grid (4 x 5) upsampled x2 nearest, first in the concatenation
    torch.testing.assert_close(
        features[:, :8], coarse.repeat_interleave(2, -2).repeat_interleave(2, -1)
    )


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


def test_transalnet_transformer_is_the_references():
    model = get_model("transalnet", head="plain", input_size=[240, 320])
    encoder = model.features.encoders[1]  # stride 16: 768 wide, 12 heads, 2 layers
    assert len(encoder.layers) == 2 and encoder.norm.eps == 1e-6
    layer = encoder.layers[0]
    fc1, gelu1, fc2, gelu2 = layer.mlp  # a GELU after both layers, no dropout
    assert (fc1.in_features, fc1.out_features, fc2.out_features) == (768, 1536, 768)
    assert isinstance(gelu1, torch.nn.GELU) and isinstance(gelu2, torch.nn.GELU)
    assert layer.norm1.eps == layer.norm2.eps == 1e-6
    assert layer.attention.num_heads == 12 and layer.attention.dropout == 0
    assert not any(isinstance(m, torch.nn.Dropout) for m in model.modules())
    # conv biases before each BatchNorm of the decoder, none in the saliency layer
    assert all(stage[0].bias is not None for stage in (model.features.up32, model.features.out))
    assert model.readout.bias is None
    # pre-norm: x + attn(norm1(x)), then + mlp(norm2(.)), computed by hand
    torch.manual_seed(0)
    small = get_model("transalnet", backbone=TINY_TRUNK, **ARCHITECTURES["transalnet"][0])
    layer = small.features.encoders[2].layers[0].eval()  # 24 wide, 4 heads
    attention, (fc1, _, fc2, _) = layer.attention, layer.mlp
    x = torch.randn(2, 6, 24)
    y = nnf.layer_norm(x, (24,), layer.norm1.weight, layer.norm1.bias, 1e-6)
    q, k, v = (
        t.view(2, 6, 4, 6).transpose(1, 2)
        for t in nnf.linear(y, attention.in_proj_weight, attention.in_proj_bias).chunk(3, -1)
    )
    attended = (torch.softmax(q @ k.transpose(-1, -2) / 6**0.5, -1) @ v).transpose(1, 2)
    h = x + nnf.linear(
        attended.reshape(2, 6, 24), attention.out_proj.weight, attention.out_proj.bias
    )
    z = nnf.layer_norm(h, (24,), layer.norm2.weight, layer.norm2.bias, 1e-6)
    expected = h + nnf.gelu(
        nnf.linear(nnf.gelu(nnf.linear(z, fc1.weight, fc1.bias)), fc2.weight, fc2.bias)
    )
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


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


# ------------------------------------------------ the reference code's behaviour
def test_reference_trunk_strides_the_1x1_conv_and_dilates_every_block():
    reference, torchvision_style = ResNetBackbone(), ResNetBackbone(style="torchvision")
    assert (reference.maxpool.padding, reference.maxpool.ceil_mode) == (0, True)
    assert (torchvision_style.maxpool.padding, torchvision_style.maxpool.ceil_mode) == (1, False)
    first = reference.layer2[0]
    assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)
    assert torchvision_style.layer2[0].conv2.stride == (2, 2)
    assert torchvision_style.layer2[0].conv1.stride == (1, 1)
    for stage, dilation in (("layer3", 2), ("layer4", 4)):
        blocks = list(getattr(reference, stage))
        assert [b.conv2.dilation for b in blocks] == [(dilation, dilation)] * len(blocks)
        assert [b.conv2.padding for b in blocks] == [(dilation, dilation)] * len(blocks)
        assert all(b.conv1.stride == (1, 1) for b in blocks)
        assert blocks[0].downsample[0].stride == (1, 1)
    # torchvision's: the first block of a dilated stage keeps the previous dilation
    assert torchvision_style.layer3[0].conv2.dilation == (1, 1)
    assert torchvision_style.layer4[0].conv2.dilation == (2, 2)
    assert torchvision_style.layer4[1].conv2.dilation == (4, 4)
    # same parameters: one state dict fits both
    torchvision_style.load_state_dict(reference.state_dict())


def test_reference_bottleneck_computes_the_strided_1x1_by_hand():
    from saldissect.models.networks import Bottleneck

    torch.manual_seed(0)
    downsample = torch.nn.Sequential(
        torch.nn.Conv2d(32, 64, 1, stride=2, bias=False), torch.nn.BatchNorm2d(64)
    )
    block = Bottleneck(32, 16, stride=2, downsample=downsample, dilation=2).eval()
    x = torch.randn(2, 32, 11, 13)

    def bn(y, norm):
        return nnf.batch_norm(y, norm.running_mean, norm.running_var, norm.weight, norm.bias)

    y = torch.relu(bn(nnf.conv2d(x, block.conv1.weight, stride=2), block.bn1))
    y = torch.relu(bn(nnf.conv2d(y, block.conv2.weight, padding=2, dilation=2), block.bn2))
    y = bn(nnf.conv2d(y, block.conv3.weight), block.bn3)
    identity = bn(nnf.conv2d(x, downsample[0].weight, stride=2), downsample[1])
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(y + identity))


@pytest.mark.parametrize("trunk", ["reference", "torchvision"])
def test_grid_sizes_match_resnet_grid_for_any_side(trunk):
    bottleneck = {**TINY_TRUNK, "block": "bottleneck", "widths": [2, 2, 2, 2], "stem_width": 4}
    plain = ResNetBackbone(**bottleneck, dilated=False, style=trunk).eval()
    for height, width in ((480, 640), (240, 320), (61, 83), (97, 130)):
        x = torch.randn(1, 3, height, width)
        with torch.no_grad():
            x = plain.maxpool(plain.relu(plain.bn1(plain.conv1(x))))
            grids = []
            for stage in ("layer1", "layer2", "layer3", "layer4"):
                x = getattr(plain, stage)(x)
                grids.append(tuple(x.shape[-2:]))
        expected = [
            (resnet_grid(height, s, trunk), resnet_grid(width, s, trunk)) for s in (4, 8, 16, 32)
        ]
        assert grids == expected, (height, width)
    # the paper's 480 x 640: 120 x 160 after the max-pool, 60 x 80 at stride 8 either way
    assert [resnet_grid(480, s) for s in (4, 8)] == [120, 60]
    assert [resnet_grid(640, s) for s in (4, 8)] == [160, 80]
    # odd sides differ: ceil_mode without padding floors where padding 1 rounds up
    assert resnet_grid(61, 4, "reference") == 15 and resnet_grid(61, 4, "torchvision") == 16


def test_dinet_and_salicon_grid_at_480x640_is_60x80():
    tiny = {**TINY_TRUNK, "block": "bottleneck", "widths": [2, 2, 2, 2], "stem_width": 4}
    for arch, options in (("dinet", {"encoder_channels": 4}), ("salicon", {"scale_channels": 2})):
        model = get_model(arch, backbone=tiny, n_bases=3, **options).eval()
        with torch.no_grad():
            out = model(torch.randn(1, 3, 480, 640))
        assert out["prob"].shape[-2:] == (60, 80) and out["saliency"].shape[-2:] == (480, 640)


def test_saliency_map_is_upsampled_nearest_unless_bilinear_is_asked():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 80)
    nearest = get_model("dinet", **SMALL).eval()
    bilinear = get_model("dinet", upsample="bilinear", **SMALL).eval()
    bilinear.load_state_dict(nearest.state_dict())
    with torch.no_grad():
        a, b = nearest(x)["saliency"], bilinear(x)["saliency"]
    # nearest: constant over each 8 x 8 cell of the 8 x 10 grid
    cells = a[..., ::8, ::8]
    torch.testing.assert_close(a, cells.repeat_interleave(8, -2).repeat_interleave(8, -1))
    assert (b - b[..., ::8, ::8].repeat_interleave(8, -2).repeat_interleave(8, -1)).abs().max() > 0


def test_dinet_reference_heads_have_no_biases_and_the_baseline_one_more_conv():
    model = get_model("dinet", head="plain", **SMALL)
    convs = [m for m in model.features.modules() if isinstance(m, torch.nn.Conv2d)]
    head = [m for n, m in model.features.named_modules() if not n.startswith("backbone")]
    assert all(m.bias is None for m in convs) and model.readout.bias is None
    assert any(isinstance(m, torch.nn.Conv2d) for m in head)
    neck = model.plain_neck[0]
    assert (neck.in_channels, neck.out_channels, neck.kernel_size) == (16, 16, (3, 3))
    # the plain head runs it; the factorised head does not
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        before = model(x)["saliency"]
        model.set_head("factorised")
        factorised = model(x)["saliency"]
        torch.nn.init.zeros_(neck.weight)
        model.set_head("plain")
        assert not torch.equal(model(x)["saliency"], before)
        model.set_head("factorised")
        assert torch.equal(model(x)["saliency"], factorised)
    project = get_model("dinet", conv_bias=True, readout_bias=True, baseline_conv=False, **SMALL)
    assert all(
        m.bias is not None
        for n, m in project.named_modules()
        if isinstance(m, torch.nn.Conv2d)
        and not n.startswith(("features.backbone", "reformulated"))
    )
    assert not list(project.plain_neck.parameters())


def test_embedded_default_keeps_the_projects_options():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    small = yaml.safe_load((root / "config/config.yaml").read_text())["models"]["dinet_small"]
    assert {
        k: small[k] for k in ("trunk", "upsample", "readout_bias", "conv_bias", "baseline_conv")
    } == {
        "trunk": "torchvision",
        "upsample": "bilinear",
        "readout_bias": True,
        "conv_bias": True,
        "baseline_conv": False,
    }
    for entry in yaml.safe_load((root / "config/salicon.yaml").read_text())["models"].values():
        assert not {"trunk", "upsample", "readout_bias", "conv_bias", "baseline_conv"} & set(entry)
