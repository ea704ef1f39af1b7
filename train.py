"""Train one fusion strategy on one fold: ``python train.py [fusion=cfnsr] [fold=1] [...]`` (see README)."""

import logging

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from cfnsr.sweep_dirs import register
from cfnsr.train import train

register()  # ${swept_dirname:...} names multirun folders after the swept keys only


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        record = train(cfg)
    except Exception:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            raise
        # One failed job must not end a sweep of dozens: its metrics.json says "failed" (with the error) and
        # the report lists it among the skipped runs.
        logging.getLogger(__name__).exception("job failed; the sweep goes on")
        return None
    return (record.get("test") or {}).get("war")  # a sweeper's objective


if __name__ == "__main__":
    main()
