"""``python -m lifecycle.pipeline STAGE``: run one stage in the current folder (what ``dvc.yaml`` calls)."""

import sys

from lifecycle.pipeline.stages import main

sys.exit(main())
