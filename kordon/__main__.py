import sys

from kordon.cli import main

sys.exit(main())
