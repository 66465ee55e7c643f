"""mlcost: predict, plan, measure and cut the cost of training and serving neural models.

The public API is re-exported here lazily so that ``import mlcost`` stays fast and torch-free.
"""

from __future__ import annotations

__version__ = "0.1.0"
