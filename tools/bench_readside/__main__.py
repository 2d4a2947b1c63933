import contextlib
import sys

from tools.bench_readside.cli import main

with contextlib.suppress(KeyboardInterrupt):
    sys.exit(main(sys.argv[1:]))
