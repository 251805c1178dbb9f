import sys

from kordon.app.cli import main

sys.exit(main())
