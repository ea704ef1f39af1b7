"""Train one fusion strategy on one fold: ``python train.py [fusion=cfnsr] [fold=1] [...]`` (see README).

The command lives in ``cfnsr.cli.train`` (installed as ``cfnsr-train``); this script runs it from a source checkout.
"""

from cfnsr.cli.train import main

if __name__ == "__main__":
    main()
