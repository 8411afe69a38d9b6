import sys

from vtr.cli import main

sys.exit(main())
