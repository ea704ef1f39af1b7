"""Download a corpus into the layout preprocessing reads: ``python download.py data=ravdess data.root=<dir>``.

The command lives in ``cfnsr.cli.download`` (installed as ``cfnsr-download``); this script runs it from a source
checkout.
"""

from cfnsr.cli.download import main

if __name__ == "__main__":
    main()
