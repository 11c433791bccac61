"""Import of the reference code's checkpoints (saldissect.models.reference).

The reference code is not part of this repository: the state dicts below are
written from its architecture description (key names and shapes as its modules
name them, see saldissect.models.reference), and `reference_forward` computes what its
networks compute with plain functional ops, from the same description. Sizes
are small (a one-block-per-stage bottleneck trunk) so the file runs in seconds;
one test checks the names and shapes at the paper's size.
"""

import pytest
import torch
import torch.nn.functional as nnf
import yaml

from saldissect.core.io import CheckpointError, load_checkpoint
from saldissect.models import reference

LAYERS, WIDTHS, STEM = [1, 1, 1, 1], [4, 4, 8, 8], 8
TRUNK = {"block": "bottleneck", "layers": LAYERS, "widths": WIDTHS, "stem_width": STEM}
N = 6
CONFIGS = {
    "dinet": {"arch": "dinet", "backbone": TRUNK, "encoder_dilations": [1, 2, 4]},
    "salicon": {"arch": "salicon", "backbone": TRUNK},
    "transalnet": {
        "arch": "transalnet",
        "backbone": TRUNK,
        "input_size": [64, 80],
        "transformer_heads": [2, 2, 2],
    },
}
SIZE = (64, 80)


# ------------------------------------------------- the reference layout, by hand
def _conv(state, name, out, inp, k, bias=False):
    state[f"{name}.weight"] = torch.randn(out, inp, k, k) * (2.0 / (inp * k * k)) ** 0.5
    if bias:
        state[f"{name}.bias"] = torch.randn(out) * 0.1


def _bn(state, name, c):
    state[f"{name}.weight"] = torch.rand(c) + 0.5
    state[f"{name}.bias"] = torch.randn(c) * 0.1
    state[f"{name}.running_mean"] = torch.randn(c) * 0.1
    state[f"{name}.running_var"] = torch.rand(c) + 0.5
    state[f"{name}.num_batches_tracked"] = torch.tensor(3)


def _linear(state, name, out, inp, bias=True):
    state[f"{name}.weight"] = torch.randn(out, inp) / inp**0.5
    if bias:
        state[f"{name}.bias"] = torch.randn(out) * 0.1


def _ln(state, name, c):
    state[f"{name}.weight"] = torch.rand(c) + 0.5
    state[f"{name}.bias"] = torch.randn(c) * 0.1


def trunk_names(arch):
    """DINet and SALICON keep torchvision's children in an nn.Sequential."""
    if arch == "transalnet":
        return {name: f"backbone.{name}" for name in ("conv1", "bn1", *STAGES)}
    named = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6, "layer4": 7}
    return {name: f"dilated_backbone.{i}" for name, i in named.items()}


STAGES = ("layer1", "layer2", "layer3", "layer4")


def reference_trunk(state, arch, layers=LAYERS, widths=WIDTHS, stem=STEM):
    """ResNet of bottlenecks: conv1 1x1 (planes), conv2 3x3, conv3 1x1 (4 planes)."""
    names = trunk_names(arch)
    _conv(state, names["conv1"], stem, 3, 7)
    _bn(state, names["bn1"], stem)
    inplanes = stem
    for index, (stage, blocks, planes) in enumerate(zip(STAGES, layers, widths, strict=True)):
        # strided stages (layer2; layer3 and layer4 unless dilated) or a width change
        downsample = index == 1 or (index >= 2 and arch == "transalnet") or inplanes != 4 * planes
        for b in range(blocks):
            p = f"{names[stage]}.{b}"
            _conv(state, f"{p}.conv1", planes, inplanes, 1)
            _bn(state, f"{p}.bn1", planes)
            _conv(state, f"{p}.conv2", planes, planes, 3)
            _bn(state, f"{p}.bn2", planes)
            _conv(state, f"{p}.conv3", 4 * planes, planes, 1)
            _bn(state, f"{p}.bn3", 4 * planes)
            if b == 0 and downsample:
                _conv(state, f"{p}.downsample.0", 4 * planes, inplanes, 1)
                _bn(state, f"{p}.downsample.1", 4 * planes)
            inplanes = 4 * planes
    if arch == "transalnet":
        _linear(state, "backbone.fc", 1000, inplanes)
    return inplanes


def reference_state(arch, phase, *, e=8, n=N, seed=0, full=False):
    """A state dict as the reference scripts save it, for one architecture and phase."""
    torch.manual_seed(seed)
    state = {}
    if full:
        channels = reference_trunk(state, arch, [3, 4, 6, 3], [64, 128, 256, 512], 64)
    else:
        channels = reference_trunk(state, arch)
    if arch == "dinet":
        _conv(state, "encoder.inception_1", e, channels, 1)
        for i in (2, 3, 4):
            _conv(state, f"encoder.inception_{i}", e, e, 3)
        if phase == "baseline":
            _conv(state, "decoder.decoder_1", e, 4 * e, 3)
            _conv(state, "decoder.decoder_2", e, e, 3)
            _conv(state, "decoder.decoder_3", 1, e, 3)
            return state
        _conv(state, "decoder.v_decoder", e, 4 * e, 3)
        _linear(state, "decoder.prototype", n, e, bias=False)
        if phase == "phase1":
            _conv(state, "decoder.sal_decoder", 1, e, 3)
        else:
            _conv(state, "decoder.sal_decoder_1", 1, n, 3)
        return state
    if arch == "salicon":
        _conv(state, "v_encoder", e, channels, 3, bias=True)
        features, layer = 2 * e, ("sal_layer_" if phase == "phase2" else "sal_layer")
    else:
        dims, tokens = (8, 8, 16), (80, 20, 6)  # strides 8, 16, 32 of a 64 x 80 input
        inputs = (4 * WIDTHS[1], 4 * WIDTHS[2], 4 * WIDTHS[3])
        for t, i in ((1, 2), (2, 1), (3, 0)):  # trans_1 is the stride-32 encoder
            d, name = dims[i], f"trans_{t}"
            _linear(state, f"{name}.patch_encoder.projection", d, inputs[i])
            state[f"{name}.patch_encoder.pos_embedding.weight"] = torch.randn(tokens[i], d)
            for layer in range(2):
                state[f"{name}.attention.{layer}.in_proj_weight"] = torch.randn(3 * d, d) / d**0.5
                state[f"{name}.attention.{layer}.in_proj_bias"] = torch.randn(3 * d) * 0.1
                _linear(state, f"{name}.attention.{layer}.out_proj", d, d)
                _ln(state, f"{name}.norm_before.{layer}", d)
                _ln(state, f"{name}.norm_after.{layer}", d)
                _linear(state, f"{name}.mlp.{layer}.mlp.fc_1", 2 * d, d)
                _linear(state, f"{name}.mlp.{layer}.mlp.fc_2", d, 2 * d)
            _ln(state, f"{name}.output_norm", d)
        decoder = ((1, 16, 8), (2, 8, 8), (3, 8, 8), (4, 8, e))  # (stage, in, out)
        for stage, inp, out in decoder:
            _conv(state, f"sal_decoder_{stage}.0", out, inp, 3, bias=True)
            _bn(state, f"sal_decoder_{stage}.1", out)
        _conv(state, "sal_decoder_4.4", e, e, 3, bias=True)
        _bn(state, "sal_decoder_4.5", e)
        features, layer = e, ("sal_cls_1" if phase == "phase2" else "sal_cls")
    if phase != "baseline":
        _linear(state, "prototype", n, features, bias=False)
    _conv(state, layer, 1, n if phase == "phase2" else features, 3)
    return state


# ------------------------------------------------- the reference forward, by hand
def _bnf(s, name, x):
    return nnf.batch_norm(
        x,
        s[f"{name}.running_mean"],
        s[f"{name}.running_var"],
        s[f"{name}.weight"],
        s[f"{name}.bias"],
    )


def reference_trunk_forward(s, arch, x, dilated):
    """Stride on each block's 1x1 conv1; max-pool 3/2, padding 0, ceil_mode; dilated
    stages (layer3: 2, layer4: 4) dilate the 3x3 conv of every block."""
    names = trunk_names(arch)
    x = torch.relu(_bnf(s, names["bn1"], nnf.conv2d(x, s[f"{names['conv1']}.weight"], None, 2, 3)))
    x = nnf.max_pool2d(x, 3, 2, 0, ceil_mode=True)
    outputs = []
    for index, stage in enumerate(STAGES):
        stride, dilation = (1 if index == 0 else 2), 1
        if dilated and index >= 2:
            stride, dilation = 1, 2 ** (index - 1)
        p = f"{names[stage]}.0"
        y = torch.relu(_bnf(s, f"{p}.bn1", nnf.conv2d(x, s[f"{p}.conv1.weight"], None, stride)))
        y = nnf.conv2d(y, s[f"{p}.conv2.weight"], None, 1, dilation, dilation)
        y = _bnf(
            s, f"{p}.bn3", nnf.conv2d(torch.relu(_bnf(s, f"{p}.bn2", y)), s[f"{p}.conv3.weight"])
        )
        identity = x
        if f"{p}.downsample.0.weight" in s:
            identity = nnf.conv2d(x, s[f"{p}.downsample.0.weight"], None, stride)
            identity = _bnf(s, f"{p}.downsample.1", identity)
        x = torch.relu(y + identity)
        outputs.append(x)
    return outputs


def _attention(s, name, x, heads):
    b, t, d = x.shape
    q, k, v = nnf.linear(x, s[f"{name}.in_proj_weight"], s[f"{name}.in_proj_bias"]).chunk(3, -1)
    q, k, v = (z.view(b, t, heads, d // heads).transpose(1, 2) for z in (q, k, v))
    out = torch.softmax(q @ k.transpose(-1, -2) / (d // heads) ** 0.5, -1) @ v
    out = out.transpose(1, 2).reshape(b, t, d)
    return nnf.linear(out, s[f"{name}.out_proj.weight"], s[f"{name}.out_proj.bias"])


def _tokens(s, name, x, heads):
    """Projection + position embedding; pre-norm layers with a 2x MLP, GELU after both
    layers, LayerNorm eps 1e-6; a final LayerNorm."""
    b, _, h, w = x.shape
    z = nnf.linear(
        x.flatten(2).transpose(1, 2),
        s[f"{name}.patch_encoder.projection.weight"],
        s[f"{name}.patch_encoder.projection.bias"],
    )
    z = z + s[f"{name}.patch_encoder.pos_embedding.weight"][None]
    d = z.shape[-1]

    def ln(key, y):
        return nnf.layer_norm(y, (d,), s[f"{key}.weight"], s[f"{key}.bias"], 1e-6)

    for layer in range(2):
        z = z + _attention(
            s, f"{name}.attention.{layer}", ln(f"{name}.norm_before.{layer}", z), heads
        )
        m = f"{name}.mlp.{layer}.mlp"
        y = nnf.gelu(
            nnf.linear(
                ln(f"{name}.norm_after.{layer}", z), s[f"{m}.fc_1.weight"], s[f"{m}.fc_1.bias"]
            )
        )
        z = z + nnf.gelu(nnf.linear(y, s[f"{m}.fc_2.weight"], s[f"{m}.fc_2.bias"]))
    return ln(f"{name}.output_norm", z).transpose(1, 2).reshape(b, d, h, w)


def _cbr(s, name, bn, x):
    y = nnf.conv2d(x, s[f"{name}.weight"], s[f"{name}.bias"], padding=1)
    return torch.relu(_bnf(s, bn, y))


def reference_forward(s, arch, phase, x):
    """(P or None, saliency) as the reference networks compute them; every resize nearest."""
    if arch == "transalnet":
        x8, x16, x32 = reference_trunk_forward(s, arch, x, dilated=False)[1:]
        t8, t16, t32 = (_tokens(s, f"trans_{t}", y, 2) for t, y in ((3, x8), (2, x16), (1, x32)))
        y = nnf.interpolate(
            nnf.interpolate(_cbr(s, "sal_decoder_1.0", "sal_decoder_1.1", t32), scale_factor=2),
            t16.shape[-2:],
        )
        y = nnf.interpolate(
            _cbr(s, "sal_decoder_2.0", "sal_decoder_2.1", torch.relu(y * t16)), scale_factor=2
        )
        y = nnf.interpolate(
            _cbr(s, "sal_decoder_3.0", "sal_decoder_3.1", torch.relu(y * t8)), scale_factor=2
        )
        y = nnf.interpolate(_cbr(s, "sal_decoder_4.0", "sal_decoder_4.1", y), scale_factor=2)
        features = _cbr(s, "sal_decoder_4.4", "sal_decoder_4.5", y)
        prototype, layers = (
            "prototype",
            {"baseline": "sal_cls", "phase1": "sal_cls", "phase2": "sal_cls_1"},
        )
    elif arch == "salicon":

        def encode(image):
            return nnf.conv2d(
                reference_trunk_forward(s, arch, image, True)[-1],
                s["v_encoder.weight"],
                s["v_encoder.bias"],
                padding=1,
            )

        fine = encode(x)
        coarse = encode(nnf.interpolate(x, (x.shape[-2] // 2, x.shape[-1] // 2)))
        features = torch.cat([nnf.interpolate(coarse, scale_factor=2), fine], 1)
        prototype, layers = (
            "prototype",
            {"baseline": "sal_layer", "phase1": "sal_layer", "phase2": "sal_layer_"},
        )
    else:
        y = torch.relu(
            nnf.conv2d(
                reference_trunk_forward(s, arch, x, True)[-1], s["encoder.inception_1.weight"]
            )
        )
        branches = [
            torch.relu(nnf.conv2d(y, s[f"encoder.inception_{i}.weight"], None, 1, d, d))
            for i, d in ((2, 1), (3, 2), (4, 4))
        ]
        y = torch.cat([sum(branches), *branches], 1)
        if phase == "baseline":
            y = torch.relu(nnf.conv2d(y, s["decoder.decoder_1.weight"], padding=1))
            y = torch.relu(nnf.conv2d(y, s["decoder.decoder_2.weight"], padding=1))
            saliency = torch.sigmoid(nnf.conv2d(y, s["decoder.decoder_3.weight"], padding=1))
            return None, nnf.interpolate(saliency, x.shape[-2:])
        features = torch.relu(nnf.conv2d(y, s["decoder.v_decoder.weight"], padding=1))
        prototype, layers = (
            "decoder.prototype",
            {"phase1": "decoder.sal_decoder", "phase2": "decoder.sal_decoder_1"},
        )
    prob = None
    if phase != "baseline":
        w = s[f"{prototype}.weight"]
        prob = torch.sigmoid(torch.einsum("nc,bchw->bnhw", w, features))
        features = prob if phase == "phase2" else torch.einsum("bnhw,nc->bchw", prob, w)
    logits = nnf.conv2d(features, s[f"{layers[phase]}.weight"], padding=1)
    return prob, torch.sigmoid(nnf.interpolate(logits, x.shape[-2:]))


# ------------------------------------------------------------------- tests
@pytest.fixture
def saved(tmp_path):
    def save(arch, phase, **kwargs):
        path = tmp_path / f"{arch}_{phase}.pth"
        torch.save(reference_state(arch, phase, **kwargs), path)
        return path

    return save


@pytest.mark.parametrize("arch", reference.ARCHS)
@pytest.mark.parametrize("phase", reference.PHASES)
def test_reference_checkpoints_import_and_compute_what_the_reference_does(saved, arch, phase):
    path = saved(arch, phase)
    imported = reference.load_reference(path, arch, phase, CONFIGS[arch])
    assert (imported.arch, imported.phase) == (arch, phase)
    assert imported.model.n_bases == (512 if phase == "baseline" else N)  # a baseline has none
    assert imported.model.head == reference.HEADS[phase]
    state = torch.load(path, weights_only=True)
    torch.manual_seed(1)
    x = torch.randn(2, 3, *SIZE)
    with torch.no_grad():
        out = imported.model(x)
        prob, saliency = reference_forward(state, arch, phase, x)
    torch.testing.assert_close(out["saliency"], saliency, atol=1e-5, rtol=1e-4)
    if prob is not None:
        torch.testing.assert_close(out["prob"], prob, atol=1e-5, rtol=1e-4)
    else:
        assert "prob" not in out
    # every tensor of the file is in the model, except TranSalNet's unused classifier
    assert imported.ignored == (
        ["backbone.fc.weight", "backbone.fc.bias"] if arch == "transalnet" else []
    )
    assert "offset" in imported.kept and float(imported.model.offset.detach()) == 0.0


def test_arch_and_phase_are_read_from_the_keys(saved):
    for arch in reference.ARCHS:
        for phase in reference.PHASES:
            state = torch.load(saved(arch, phase), weights_only=True)
            assert reference.detect_arch(state) == arch
            assert reference.detect_phase(state, arch) == phase
    imported = reference.load_reference(saved("salicon", "phase2"), model_cfg=CONFIGS["salicon"])
    assert (imported.arch, imported.phase, imported.head) == ("salicon", "phase2", "reformulated")


def test_sizes_come_from_the_tensors_and_phase_two_weights_from_kernel_sums(saved):
    path = saved("dinet", "phase2", e=12, n=9)
    config = {**CONFIGS["dinet"], "encoder_channels": 512, "n_bases": 512}  # as the schema fills
    imported = reference.load_reference(path, "dinet", "phase2", config)
    assert imported.config["encoder_channels"] == 12 and imported.config["n_bases"] == 9
    assert imported.model.features.out_channels == 12
    kernel = torch.load(path, weights_only=True)["decoder.sal_decoder_1.weight"]
    torch.testing.assert_close(imported.model.basis_weights(), kernel.sum(dim=(0, 2, 3)))
    table = reference.basis_weights_frame(imported.model)
    assert list(table.columns) == ["basis", "weight"] and len(table) == 9


def test_paper_sized_dinet_with_e_256_imports_without_a_missing_or_unexpected_key(saved):
    path = saved("dinet", "phase1", e=256, n=512, full=True)
    imported = reference.load_reference(path)  # the paper's model: every default
    assert imported.config["encoder_channels"] == 256
    assert sorted(imported.kept) == ["offset", "plain_neck.0.weight", "reformulated.weight"]
    trunk = imported.model.features.backbone
    assert trunk.out_channels == 2048 and trunk.style == "reference"
    assert torch.equal(
        trunk.layer4[2].conv3.weight,
        torch.load(path, weights_only=True)["dilated_backbone.7.2.conv3.weight"],
    )


def test_a_file_that_does_not_fit_is_refused_with_one_message_naming_keys_and_shapes(saved):
    path = saved("dinet", "phase1")
    state = torch.load(path, weights_only=True)
    del state["encoder.inception_3.weight"]
    state["decoder.extra.weight"] = torch.zeros(2, 3)
    state["decoder.prototype.weight"] = torch.zeros(N, 7)
    torch.save(state, path)
    with pytest.raises(reference.ReferenceCheckpointError) as caught:
        reference.load_reference(path, "dinet", "phase1", CONFIGS["dinet"])
    assert isinstance(caught.value, CheckpointError)
    message = str(caught.value)
    assert "1 keys in the file have no place in the model" in message
    assert "decoder.extra.weight (2, 3)" in message
    assert "1 keys the model needs are not in the file" in message
    assert "encoder.inception_3.weight (8, 8, 3, 3) (our features.branches.1.0.weight)" in message
    assert "decoder.prototype.weight: file (6, 7), model (6, 8)" in message


def test_wrong_phase_wrong_options_and_foreign_files_are_refused(saved, tmp_path):
    with pytest.raises(reference.ReferenceCheckpointError, match="looks like a phase2 file"):
        reference.load_reference(
            saved("transalnet", "phase2"), "transalnet", "phase1", CONFIGS["transalnet"]
        )
    # a project option that adds parameters the reference lacks
    with pytest.raises(reference.ReferenceCheckpointError, match=r"sal_layer.bias \(1,\)"):
        reference.load_reference(
            saved("salicon", "phase1"),
            "salicon",
            "phase1",
            {**CONFIGS["salicon"], "readout_bias": True},
        )
    with pytest.raises(reference.ReferenceCheckpointError, match="decoder.decoder_2.weight"):
        reference.load_reference(
            saved("dinet", "baseline"),
            "dinet",
            "baseline",
            {**CONFIGS["dinet"], "baseline_conv": False},
        )
    # a salicon file read as a dinet one
    with pytest.raises(reference.ReferenceCheckpointError, match="looks like a salicon file"):
        reference.load_reference(saved("salicon", "phase1"), "dinet", "phase1", CONFIGS["dinet"])
    # a pickled module needs code to load: weights_only refuses it
    pickled = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), pickled)
    with pytest.raises(CheckpointError, match="weights_only"):
        reference.load_reference(pickled, "dinet")
    nested = tmp_path / "nested.pth"
    torch.save({"model": {"a": torch.zeros(1)}}, nested)
    with pytest.raises(reference.ReferenceCheckpointError, match="not a bare state dict"):
        reference.load_reference(nested, "dinet")


def test_dataparallel_prefix_is_removed(saved):
    path = saved("salicon", "phase1")
    state = torch.load(path, weights_only=True)
    torch.save({f"module.{k}": v for k, v in state.items()}, path)
    assert reference.read_reference_state(path).keys() == state.keys()


def test_saved_import_loads_as_a_trained_model_of_the_workflow(saved, tmp_path):
    from saldissect.training.train import load_model

    imported = reference.load_reference(
        saved("dinet", "phase2"), "dinet", "phase2", CONFIGS["dinet"]
    )
    out = tmp_path / "phase2" / "model.pt"
    reference.save_imported(imported, out)
    checkpoint = load_checkpoint(out)
    assert set(checkpoint) == {"model", "meta", "epoch", "versions"}
    assert checkpoint["meta"]["imported"]["phase"] == "phase2"
    model = load_model(out, checkpoint["meta"]["model"], "reformulated", torch.device("cpu"))
    x = torch.randn(1, 3, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["saliency"], imported.model(x)["saliency"])


def test_command_line_converts_and_refuses_with_one_message(saved, tmp_path, capsys):
    source = saved("dinet", "phase2")
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"models": {"mine": CONFIGS["dinet"], "other": CONFIGS["salicon"]}})
    )
    out, weights = tmp_path / "model.pt", tmp_path / "basis_weights.parquet"
    argv = ["convert", "--arch", "dinet", "--phase", "phase2", "--model-config", str(config)]
    code = reference.main(
        [*argv, "--model", "mine", str(source), str(out), "--basis-weights", str(weights)]
    )
    assert code == 0 and out.exists() and weights.exists()
    printed = capsys.readouterr().out
    assert "dinet phase2 (head reformulated)" in printed and "encoder_channels: 8" in printed
    # inline YAML, inspect only
    inline = yaml.safe_dump(CONFIGS["dinet"], default_flow_style=True, width=1000)
    assert reference.main(["inspect", "--model-config", inline, str(source)]) == 0
    # a misfit: one message on stderr, exit status 1
    assert (
        reference.main(["inspect", "--phase", "phase1", "--model-config", inline, str(source)]) == 1
    )
    error = capsys.readouterr().err
    assert error.count("error:") == 1 and "decoder.sal_decoder.weight (1, 8, 3, 3)" in error
    with pytest.raises(SystemExit):
        reference.main(
            ["convert", "--model-config", str(config), str(source), str(out)]
        )  # two models
