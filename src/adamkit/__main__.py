import sys

from adamkit.lab.cli import main

sys.exit(main())
