import sys

from tools.bench.cli import main
from tools.bench.webhooks import main as webhooks

if sys.argv[1:2] == ["webhooks"]:
    sys.exit(webhooks(sys.argv[2:]))
sys.exit(main(sys.argv[1:]))
