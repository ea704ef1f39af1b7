"""Train one fusion strategy on one fold: ``python train.py [fusion=cfnsr] [fold=1] [...]`` (see README)."""

import hydra
from omegaconf import DictConfig

from cfnsr.sweep_dirs import register
from cfnsr.train import train

register()  # ${swept_dirname:...} names multirun folders after the swept keys only


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    record = train(cfg)
    return (record.get("test") or {}).get("war")  # a sweeper's objective


if __name__ == "__main__":
    main()
