import sys

from tools.bench_hapi.cli import main

sys.exit(main(sys.argv[1:]))
