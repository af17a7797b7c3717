"""Local stand-ins for the AWS pieces (tests, the local API and the benchmarks share them).

Nothing here is deployed: the layer never imports ``devtools``.
"""

import sys
from pathlib import Path

# The layer's package (``service``) is importable here as in Lambda (where the layer is
# /opt/python), so ``python -m devtools.<tool>`` works without setting PYTHONPATH.
_LAYER = str(Path(__file__).resolve().parent.parent / "layers" / "shared")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
