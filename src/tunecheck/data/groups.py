"""Groups of rows that must land in the same split (a grouped split, as scikit-learn's
``GroupShuffleSplit`` / ``StratifiedGroupKFold`` do for user-given groups).

Rows are linked when

* their normalised input text is identical (the exact-duplicate test of ``tunecheck verify``);
* one is a near duplicate of the other at ``verify``'s defaults: at least ``threshold`` of one
  row's distinct word ``ngram``-grams occur in the other (the same normalisation and n-gram
  hashing as :func:`tunecheck.data.contamination.find_contamination`);
* they share a non-empty value of a user field (``--group-by``: conversation id, document id).

Groups are the connected components of these links (``scipy.sparse.csgraph``), so a chain
``a ~ b ~ c`` keeps all three together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tunecheck.data.contamination import _gram_hashes, _normalize_many


@dataclass
class Grouping:
    """Which group each row belongs to, and what linked them."""

    group_of: list[int]
    n_groups: int
    links: dict[str, int] = field(default_factory=dict)

    @property
    def multi_row_groups(self) -> int:
        """Groups with more than one row."""
        from collections import Counter

        return sum(1 for c in Counter(self.group_of).values() if c > 1)

    @property
    def rows_in_multi_row_groups(self) -> int:
        from collections import Counter

        return sum(c for c in Counter(self.group_of).values() if c > 1)

    def summary(self) -> dict[str, Any]:
        return {
            "groups": self.n_groups,
            "multi_row_groups": self.multi_row_groups,
            "rows_in_multi_row_groups": self.rows_in_multi_row_groups,
            "links": dict(self.links),
        }


def _near_pairs(norm: list[str], ngram: int, threshold: float):
    """(i, j) pairs where at least ``threshold`` of row i's distinct n-grams occur in row j."""
    import numpy as np
    from scipy import sparse

    hashes, docs = _gram_hashes(norm, ngram)
    if len(hashes) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    _, col = np.unique(hashes, return_inverse=True)
    incidence = sparse.csr_matrix(
        (np.ones(len(col), dtype=np.int32), (docs, col.ravel())),
        shape=(len(norm), int(col.max()) + 1),
    )
    incidence.sum_duplicates()
    incidence.data[:] = 1  # a repeated n-gram counts once: distinct n-grams per row
    totals = np.asarray(incidence.sum(axis=1)).ravel()
    shared = sparse.coo_matrix(incidence @ incidence.T)
    off = shared.row != shared.col
    i, j, n = shared.row[off], shared.col[off], shared.data[off]
    keep = n >= threshold * np.maximum(totals[i], 1) - 1e-9
    keep &= totals[i] > 0
    return i[keep], j[keep]


def find_groups(
    texts: list[str],
    *,
    near: bool = True,
    ngram: int = 13,
    threshold: float = 0.5,
    keys: list[Any] | None = None,
) -> Grouping:
    """Group rows by identical normalised text, near duplicates (``near``) and ``keys``."""
    import numpy as np
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    n = len(texts)
    norm = _normalize_many(texts)
    rows: list[Any] = []
    cols: list[Any] = []
    links: dict[str, int] = {}

    def link_equal(values: list[Any], name: str) -> None:
        first: dict[Any, int] = {}
        count = 0
        for k, v in enumerate(values):
            if v is None or v == "":
                continue
            if v in first:
                rows.append(np.array([first[v]]))
                cols.append(np.array([k]))
                count += 1
            else:
                first[v] = k
        links[name] = count

    link_equal(norm, "same_text")
    if near:
        a, b = _near_pairs(norm, ngram, threshold)
        rows.append(a)
        cols.append(b)
        pairs = {(min(x, y), max(x, y)) for x, y in zip(a.tolist(), b.tolist(), strict=True)}
        links["near_duplicate"] = sum(1 for x, y in pairs if norm[x] != norm[y])
    if keys is not None:
        link_equal([None if k is None else str(k) for k in keys], "same_key")
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    graph = sparse.coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    n_groups, labels = connected_components(graph, directed=False)
    return Grouping(group_of=[int(x) for x in labels], n_groups=int(n_groups), links=links)
