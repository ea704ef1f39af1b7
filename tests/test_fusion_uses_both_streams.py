"""The exact check that a fusion fuses: the synthetic corpus's synergy pair (real training, tiny backbones).

In the ``interactions`` corpus (docs/diagnostics.md) the two synergy classes are the XOR of a face bit and a voice
bit: each modality alone is at chance (50 %) on them, and any fusion whose class scores are a sum of a video term and
an audio term (averaging, products of probabilities, the multiplicative loss) is bounded by 75 %, while a fusion that
mixes features before its classifier can reach 100 %. So, on the test actors:

* late fusions stay below 80 % on synergy; concat_fc and MMTM exceed 90 % (MSAF and CFN-SR did not in the sweep of
  docs/diagnostics.md: measured there, not asserted here) (corpus: the synergy pair
  alone, tests_helpers.SYNERGY_DATA: 8 training actors, 128 clips, 32 test clips, EPOCHS epochs);
* each unimodal model is at chance on the pair only the other modality separates and on synergy (<= 75 % on 16
  clips; 13 or more right by luck: p = 1 %) and above chance on the redundant pair (corpus: all four pairs,
  tests_helpers.INTERACTIONS_DATA, 6 training actors).

Every one trains, so all run under ``slow`` (``pytest -m slow``). Every fusion on the search path has
an expectation here; a new one fails until it gets one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import get_class
from tests_helpers import CONF_DIR, INTERACTIONS_DATA, SYNERGY_DATA, compose_train, fusions

from cfnsr.tasks.train import train

EPOCHS = 20
COMMON = ["protocol=clean", "fold=1", f"trainer.max_epochs={EPOCHS}", "measure_gflops=false", "logger=csv"]

# What each fusion can represent on a synergy pair: additive class scores (late) or mixed features (fuses).
LATE = ("averaging", "multiplicative_loss", "prob_product")
FUSES = ("concat_fc", "mmtm")
UNIMODAL_BLIND_TO = {"video_only": "audio_unique", "audio_only": "video_unique"}
# Measured, not asserted (docs/diagnostics.md): MCBP (bilinear pooling can represent XOR; no expectation was set),
# and MSAF and CFN-SR, which the issue expected above 90 % but which stayed at chance on synergy in the 10-epoch
# sweep (MSAF: 54 ± 5 %, CFN-SR: 46 ± 14 %; both end in per-modality terms and their attention did not learn the
# XOR): a finding, not tuned away.
UNJUDGED = ("mcbp", "msaf", "cfnsr")
FAST = ("averaging", "concat_fc")


def _modalities(name: str) -> tuple[str, ...]:
    return tuple(get_class(fusions()[name].target).modalities)


def _shipped(name: str) -> bool:
    return (Path(CONF_DIR) / "fusion" / f"{name}.yaml").is_file()


# A user's own fusion (a YAML on hydra.searchpath) declared "Late" combines per-modality decisions: it is held to the
# additive bound like the shipped late fusions; a user's fusion of another stage is measured, not judged.
USER_LATE = tuple(n for n, f in fusions().items() if not _shipped(n) and f.stage == "Late")


@pytest.mark.parametrize("fusion", list(fusions()))
def test_every_fusion_has_an_expectation(fusion: str):
    """A shipped fusion without one would escape the check silently."""
    known = (*LATE, *FUSES, *UNIMODAL_BLIND_TO, *UNJUDGED)
    assert fusion in known or not _shipped(fusion), \
        f"fusion {fusion!r} ({_modalities(fusion)}) has no synergy expectation in this test"


def _prepared(tmp_path_factory: pytest.TempPathFactory, data: list[str]) -> Path:
    from cfnsr.builders.objects import preprocess_settings
    from cfnsr.data.prepare import prepare_corpus

    data_dir = tmp_path_factory.mktemp("corpus")
    cfg = compose_train([*COMMON, *data], data_dir=data_dir, output_dir=data_dir / "unused")
    prepare_corpus(cfg.data.root, cfg.data.cache_dir, preprocess_settings(cfg), generate=dict(cfg.data.generate),
                   workers=2, verbose=False)
    return data_dir


@pytest.fixture(scope="module")
def synergy_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _prepared(tmp_path_factory, SYNERGY_DATA)


@pytest.fixture(scope="module")
def interactions_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _prepared(tmp_path_factory, INTERACTIONS_DATA)


def _by_interaction(fusion: str, data_dir: Path, out: Path, data: list[str]) -> dict[str, float]:
    record = train(compose_train([f"fusion={fusion}", *COMMON, *data], data_dir, out / fusion))
    return {k: v["acc"] for k, v in record["test"]["by_interaction"].items()}


def _check_synergy(fusion: str, data_dir: Path, out: Path) -> None:
    acc = _by_interaction(fusion, data_dir, out, SYNERGY_DATA)
    assert list(acc) == ["synergy"]
    if fusion in (*LATE, *USER_LATE):
        assert acc["synergy"] < 0.80, f"{fusion} (late) beat the 75 % additive bound on synergy: {acc}"
    else:
        assert acc["synergy"] > 0.90, f"{fusion} did not learn the synergy pair in {EPOCHS} epochs: {acc}"


@pytest.mark.slow  # trains 20 epochs per fusion (~30 s with the corpus): the end-to-end set
@pytest.mark.parametrize("fusion", FAST)
def test_synergy_separates_late_from_early_fusion(fusion: str, synergy_data_dir: Path, tmp_path: Path):
    _check_synergy(fusion, synergy_data_dir, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("fusion", [f for f in (*LATE, *USER_LATE, *FUSES) if f not in FAST])
def test_synergy_expectation_of_every_fusion(fusion: str, synergy_data_dir: Path, tmp_path: Path):
    _check_synergy(fusion, synergy_data_dir, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("fusion", list(UNIMODAL_BLIND_TO))
def test_unimodal_models_are_at_chance_where_they_are_blind(fusion: str, interactions_data_dir: Path,
                                                            tmp_path: Path):
    acc = _by_interaction(fusion, interactions_data_dir, tmp_path, INTERACTIONS_DATA)
    blind = UNIMODAL_BLIND_TO[fusion]
    assert acc[blind] <= 0.75 and acc["synergy"] <= 0.75, f"{fusion} above chance where it is blind: {acc}"
    # ... and not because it learnt nothing: the redundant pair, which its modality carries, is above chance.
    assert acc["redundant"] > 0.6, f"{fusion} did not learn the redundant pair: {acc}"
