"""Emotions over time in your own videos: ``python predict.py ckpt_path=<ckpt> input=<video | folder | glob>``.

The command lives in ``cfnsr.cli.predict`` (installed as ``cfnsr-predict``); this script runs it from a source checkout.
"""

from cfnsr.cli.predict import main

if __name__ == "__main__":
    main()
