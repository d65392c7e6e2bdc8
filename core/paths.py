"""Where ripplebench's bundled data lies inside the installed package (or the checkout).

Only paths: the files belong to the layers named here, but editors and the harness both read
them (e.g. the knowledge base for Meta-Aug CPT's oracle augmentations, the training split for
MEMIT's key statistics), so their location is spelled once, here, without importing those layers.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
CONTROLLED_RIPPLE_DATA_DIR = PACKAGE_ROOT / "tasks" / "controlled_ripple" / "data"
CONTROLLED_RIPPLE_KB_DIR = PACKAGE_ROOT / "harness" / "data" / "controlled_ripple" / "kb"
