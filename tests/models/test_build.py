"""build_model and the two checkpoint loaders."""

import pytest
import torch
from tests_helpers import make

from cfnsr.models.build import load_backbone_weights, load_kinetics_resnext
from cfnsr.models.fusion.msaf import MSAF


def test_build_instantiates_only_the_needed_backbones(build):
    model = build("video_only")
    assert model.video.__class__.__name__ == "ResNeXt3D" and not hasattr(model, "audio")
    model = build("audio_only")
    assert model.audio.__class__.__name__ == "MFCCCNN" and not hasattr(model, "video")


def test_build_passes_config_hyperparameters(build):
    model = build("msaf", block_dropout=0.5)
    assert isinstance(model, MSAF) and model.blocks[0].block_dropout == 0.5
    assert model.video.fc.out_features == 8


def _lightning_checkpoint(model, path):
    torch.save({"epoch": 3, "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, path)


def _same_weights(a, b):
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("fusion", ["msaf", "cfnsr"])  # heads kept / heads dropped
def test_unimodal_checkpoints_initialise_the_fused_backbones(build, tmp_path, fusion):
    video_only, audio_only = build("video_only", seed=1), build("audio_only", seed=2)
    _lightning_checkpoint(video_only, tmp_path / "video.ckpt")
    torch.save(audio_only.state_dict(), tmp_path / "audio.pt")  # a plain state dict works too
    model = build(fusion, seed=3)
    fusion_weights = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(("video.", "audio."))}

    load_backbone_weights(model, video=tmp_path / "video.ckpt", audio=tmp_path / "audio.pt")

    for modality, unimodal in (("video", video_only), ("audio", audio_only)):
        backbone_state = getattr(unimodal, modality).state_dict()
        for key, value in getattr(model, modality).state_dict().items():
            assert torch.equal(value, backbone_state[key]), key
    for key, value in fusion_weights.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_wrong_checkpoint_lists_missing_and_unexpected_keys(build, tmp_path):
    _lightning_checkpoint(build("audio_only"), tmp_path / "audio.ckpt")
    model = build("msaf")
    with pytest.raises(ValueError) as error:
        load_backbone_weights(model, video=tmp_path / "audio.ckpt")
    message = str(error.value)
    assert "missing keys" in message and "'conv1.weight'" in message
    assert "unexpected keys" in message and "model.audio.conv1.weight" in message


def test_mismatched_shapes_are_listed(build, tmp_path):
    torch.save(make("backbone", "tiny", "video", num_classes=5).state_dict(), tmp_path / "video.pt")
    with pytest.raises(ValueError, match=r"shape mismatches \(2\): \['fc\.bias: checkpoint \(5,\) vs model \(8,\)"):
        load_backbone_weights(build("msaf"), video=tmp_path / "video.pt")


def _kenshohara_release(backbone, num_classes):
    """A 3D-ResNets-PyTorch style file: DataParallel keys, a Kinetics head, no num_batches_tracked."""
    state = {f"module.{k}": v for k, v in backbone.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["module.fc.weight"] = torch.randn(num_classes, backbone.feature_dim)
    state["module.fc.bias"] = torch.randn(num_classes)
    return {"epoch": 200, "arch": "resnext-101", "state_dict": state, "optimizer": {}}


def test_kinetics_release_loads_and_drops_its_head(tmp_path):
    torch.manual_seed(0)
    source, target = make("backbone", "tiny", "video", num_classes=8), make("backbone", "tiny", "video", num_classes=8)
    torch.save(_kenshohara_release(source, num_classes=400), tmp_path / "kinetics.pth")
    fc_before = target.fc.weight.clone()
    load_kinetics_resnext(target, tmp_path / "kinetics.pth")
    assert torch.equal(target.layer4[0].conv2.weight, source.layer4[0].conv2.weight)
    assert torch.equal(target.fc.weight, fc_before)


def test_kinetics_release_of_another_architecture_is_refused(tmp_path):
    other = make("backbone", "tiny", "video", num_classes=8, layers=[1, 2, 1, 1])
    torch.save(_kenshohara_release(other, num_classes=400), tmp_path / "kinetics.pth")
    with pytest.raises(ValueError, match=r"unexpected keys \(\d+\): \['layer2\.1\.bn1\.bias'"):
        load_kinetics_resnext(make("backbone", "tiny", "video", num_classes=8), tmp_path / "kinetics.pth")
