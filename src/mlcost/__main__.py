import sys

from mlcost.cli.main import main

sys.exit(main())
