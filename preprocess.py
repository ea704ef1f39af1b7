"""Turn a RAVDESS-layout folder into the training cache: ``python preprocess.py data=ravdess data.root=<dir>``.

The command lives in ``cfnsr.cli.preprocess`` (installed as ``cfnsr-preprocess``); this script runs it from a source checkout.
"""

from cfnsr.cli.preprocess import main

if __name__ == "__main__":
    main()
