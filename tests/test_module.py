"""EmotionModule (cfnsr/module.py) on a tiny network: loss and gradients, metric state, non-finite input, the
checkpoint keys of its run identity; and the one test helper (cfnsr/tester.py) that returns its test result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from tests_helpers import compose_train
from torch.utils.data import DataLoader, Dataset

from cfnsr.builders.objects import build_module, clip_shapes
from cfnsr.module import EmotionModule
from cfnsr.runs.checkpoint_files import CHECKPOINT_FORMAT, RunIdentity
from cfnsr.runs.corpus_check import CORPUS_KEY
from cfnsr.runs.provenance import code_version
from cfnsr.tester import ResultFile, run_test

N_CLIPS = 6


class _Clips(Dataset):
    """Random clips of the config's shapes, with stems (as CachedClips has) and indices in every item."""

    def __init__(self, video_shape, audio_shape, poison: int | None = None) -> None:
        g = torch.Generator().manual_seed(0)
        self.video = torch.randn(N_CLIPS, *video_shape, generator=g)
        self.audio = torch.randn(N_CLIPS, *audio_shape, generator=g)
        if poison is not None:
            self.audio[poison] = float("nan")
        self.labels = torch.arange(N_CLIPS) % 8
        self.stems = [f"01-01-0{i % 8 + 1}-01-01-01-0{i + 1}" for i in range(N_CLIPS)]

    def __len__(self) -> int:
        return N_CLIPS

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"video": self.video[i], "audio": self.audio[i], "label": self.labels[i], "index": torch.tensor(i)}


class _Data(pl.LightningDataModule):
    def __init__(self, ds: _Clips) -> None:
        super().__init__()
        self.datasets = {"train": ds, "val": ds, "test": ds}

    def train_dataloader(self):
        return DataLoader(self.datasets["train"], batch_size=3)

    def test_dataloader(self):
        return DataLoader(self.datasets["test"], batch_size=4)


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[EmotionModule, tuple, tuple]:
    cfg = compose_train(["fusion=concat_fc"], tmp_path, tmp_path / "out")
    torch.manual_seed(0)
    return build_module(cfg, load_init=False)[0], *clip_shapes(cfg)


def _trainer(tmp_path: Path, callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False, default_root_dir=str(tmp_path),
                      callbacks=callbacks)


def test_training_step_gives_a_finite_loss_with_gradients(tiny):
    module, vshape, ashape = tiny
    batch = next(iter(DataLoader(_Clips(vshape, ashape), batch_size=3)))
    loss = module.training_step(batch, 0)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.requires_grad
    loss.backward()
    grads = [p.grad for p in module.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_validation_metrics_accumulate_over_batches_and_reset(tiny):
    module, vshape, ashape = tiny
    module.eval()
    ds = _Clips(vshape, ashape)
    batches = list(DataLoader(ds, batch_size=4))
    with torch.no_grad():
        logits = module(ds.video, ds.audio).logits
        module.on_validation_epoch_start()
        for i, b in enumerate(batches):
            module.validation_step(b, i)
    expected = (logits.argmax(1) == ds.labels).float().mean()
    assert module.val_metrics["war"].compute() == pytest.approx(float(expected))
    module.val_metrics.reset()
    assert module.val_metrics["war"].tp.sum() == 0  # state emptied: the next epoch starts from zero


def test_each_test_run_starts_from_zero(tiny, tmp_path: Path):
    module, vshape, ashape = tiny
    data = _Data(_Clips(vshape, ashape))
    for _ in range(2):  # a second test (e.g. of the last checkpoint) must not count the first one's clips
        run_test(lambda extra: _trainer(tmp_path, extra), module, data, tmp_path / "results" / "test.json")
        result = json.loads((tmp_path / "results" / "test.json").read_text())  # what rank 0 wrote
        assert result["n"] == N_CLIPS
        assert sum(map(sum, result["confusion"])) == N_CLIPS


class _PaddedData(_Data):
    """Test loader that repeats clips 0 and 1, as a padding distributed sampler would for a 4th rank."""

    def test_dataloader(self):
        return DataLoader(self.datasets["test"], batch_size=4, sampler=[*range(N_CLIPS), 0, 1])


def test_test_result_reaches_the_caller_and_repeated_clips_fail(tiny, tmp_path: Path):
    module, vshape, ashape = tiny
    path = tmp_path / "results" / "test.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"n": -1}))  # an earlier test's file: never the result of this one
    result = run_test(lambda extra: _trainer(tmp_path, extra), module, _Data(_Clips(vshape, ashape)), path)
    assert result["n"] == N_CLIPS and result["ranks"] == [{**result["ranks"][0], "rank": 0, "clips": N_CLIPS}]
    assert result["split_clips"] == N_CLIPS  # the size of the dataset the test loop iterated
    with pytest.raises(RuntimeError, match=f"counted {N_CLIPS + 2} clips but the test split holds {N_CLIPS}"):
        _trainer(tmp_path).test(module, datamodule=_PaddedData(_Clips(vshape, ashape)), verbose=False)


def test_non_finite_input_fails_naming_the_clips(tiny, tmp_path: Path):
    module, vshape, ashape = tiny
    ds = _Clips(vshape, ashape, poison=4)  # second training batch: clips 3, 4, 5
    with pytest.raises(FloatingPointError, match=ds.stems[4]):
        _trainer(tmp_path).fit(module, datamodule=_Data(ds))


def test_the_tested_weights_are_the_ones_given(tiny, tmp_path: Path):
    module, vshape, ashape = tiny
    data = _Data(_Clips(vshape, ashape))
    zero = {k: torch.zeros_like(v) for k, v in module.state_dict().items()}
    result = run_test(lambda extra: _trainer(tmp_path, extra), module, data, tmp_path / "r.json", weights=lambda: zero)
    assert all(float(v.abs().sum()) == 0 for v in module.state_dict().values())
    # all-zero weights give all-zero logits, whose argmax is class 0 for every clip
    assert [sum(col) for col in zip(*result["confusion"], strict=True)] == [N_CLIPS] + [0] * 7


def test_a_result_from_another_process_is_read_from_rank_0s_file(tmp_path: Path):
    # ddp_spawn: the test ran in children; this process's ResultFile saw no on_test_end and reads rank 0's file.
    path = tmp_path / "test_results" / "test.json"
    with pytest.raises(RuntimeError, match=f"no result in this process and no {path}"):
        ResultFile(path).read()
    path.parent.mkdir()
    path.write_text(json.dumps({"war": 0.5, "n": 3}))
    assert ResultFile(path).read() == {"war": 0.5, "n": 3}


def test_checkpoints_carry_the_run_identity_under_the_same_keys(tiny):
    module, _, _ = tiny
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint == {}  # a module built without an identity (evaluation) writes no cfnsr keys
    identity = RunIdentity("run-1", {"fusion": {"name": "concat_fc"}}, {"train_actors": [1], "val_actors": [2],
                                                                         "test_actors": [3]})
    module.identity = identity
    module.on_save_checkpoint(checkpoint)
    assert checkpoint == {"cfnsr_config": {"fusion": {"name": "concat_fc"}}, "cfnsr_format": CHECKPOINT_FORMAT,
                          "cfnsr_run_id": "run-1", "cfnsr_split": identity.split,
                          "cfnsr_code_version": code_version()}
    identity.corpus = {"corpus_fingerprint": "abc", "cache_dir": "/c", "cache_settings_hash": "h"}  # after prepare
    module.on_save_checkpoint(checkpoint)
    assert checkpoint[CORPUS_KEY] == identity.corpus and list(checkpoint)[-1] == CORPUS_KEY
