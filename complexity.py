"""Parameters, GFLOPs per clip and (on request) CPU latency of every fusion: ``python complexity.py backbone=paper``."""

from cfnsr.tasks.complexity import main

if __name__ == "__main__":
    main()
