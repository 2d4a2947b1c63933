import sys

from tools.demo.cli import main

sys.exit(main())
