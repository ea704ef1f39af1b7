"""``python -m cfnsr.data.synthetic <root> ...``"""

import sys

from cfnsr.data.synthetic.cli import main

sys.exit(main())
