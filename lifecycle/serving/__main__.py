"""``python -m lifecycle.serving rest|grpc|constant``: run one model server (what start_server starts)."""

import sys

from lifecycle.serving.command import main

sys.exit(main())
