"""Parameters, GFLOPs per clip and (on request) CPU latency of every fusion: ``python complexity.py backbone=paper``.

The command lives in ``cfnsr.cli.complexity`` (installed as ``cfnsr-complexity``); this script runs it from a source checkout.
"""

from cfnsr.cli.complexity import main

if __name__ == "__main__":
    main()
