"""Turn a RAVDESS-layout folder into the training cache: ``python preprocess.py data=ravdess data.root=<dir>``."""

import sys

import hydra
from omegaconf import DictConfig

from cfnsr.data.prepare import prepare_corpus
from cfnsr.experiment import preprocess_settings
from cfnsr.sweep_dirs import register

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="preprocess_job")
def main(cfg: DictConfig) -> None:
    try:
        prepare_corpus(cfg.data.root, cfg.data.cache_dir, preprocess_settings(cfg),
                       generate=cfg.data.get("generate"), workers=cfg.preprocess.workers,
                       force=cfg.preprocess.force, verify=cfg.preprocess.verify,
                       retry_failed=cfg.preprocess.retry_failed)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:  # nothing usable, or not a RAVDESS folder
        print(f"preprocess.py: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
