"""``python -m lifecycle.serving rest|grpc|tutorial|constant``: run one server (used by start_server)."""

import sys

from lifecycle.serving.process import main

sys.exit(main())
