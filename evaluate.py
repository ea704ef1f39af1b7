"""Re-evaluate a checkpoint on its fold's test actors: ``python evaluate.py ckpt_path=<run>/checkpoints/last.ckpt``.

The command lives in ``cfnsr.cli.evaluate`` (installed as ``cfnsr-evaluate``); this script runs it from a source checkout.
"""

from cfnsr.cli.evaluate import main

if __name__ == "__main__":
    main()
