"""Data-level cuts priced in dollars: read a corpus, remove exact and near duplicates, low-quality and
contaminated documents, optionally redact PII, count tokens before and after, and price the difference with
the same estimator as ``mlcost estimate train``.

Heavy libraries (datasketch, tokenizers, zstandard, pyarrow) sit behind the ``data`` extra and are imported
inside the functions that need them. The core (spec, catalog, estimate, plan, finance) never imports this
package.
"""

from mlcost.dataprep.pipeline import CutConfig, DataResult, run_pipeline
from mlcost.dataprep.price import JobTarget, PriceResult, price_cut

__all__ = ["CutConfig", "DataResult", "JobTarget", "PriceResult", "price_cut", "run_pipeline"]
