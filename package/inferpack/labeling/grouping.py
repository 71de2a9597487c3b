"""Auto-grouping: unlabelled images clustered by what they look like, so a person labels a
group at once. scikit-learn's MiniBatchKMeans over one feature vector per image:

- the model's answer scores, one per class (its last layer, standing in for an embedding
  until a bundle declares one): a classifier's probabilities, a detector's summed box scores;
- image statistics: the 64-bin colour histogram, brightness and colourfulness (``signals``).

scikit-learn (with SciPy, ~200 MB installed) is the optional ``labeling`` extra, not in the
server image: a server without it refuses auto-grouping tasks with a clear message.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np

REPRESENTATIVES = 3  # per group: the members nearest its centre
SEED = 0  # the same images give the same groups


def available() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def features(line: dict[str, Any], labels: Sequence[str]) -> np.ndarray:
    scores = np.zeros(len(labels), dtype=np.float64)
    index = {name: i for i, name in enumerate(labels)}
    for result in line.get("results", []):
        scores[index[result["name"]]] += float(result["score"])
    stats = line.get("stats") or {}
    histogram = np.asarray(stats.get("histogram", [0.0] * 64), dtype=np.float64)
    extra = [stats.get("brightness", 0.0), stats.get("colourfulness", 0.0)]
    return np.concatenate([scores, histogram, np.asarray(extra, dtype=np.float64)])


def group(sample_ids: Sequence[str], vectors: np.ndarray, n_clusters: int) -> list[dict[str, Any]]:
    """Each group's members and representatives, largest group first."""
    from sklearn.cluster import MiniBatchKMeans

    clusters = min(n_clusters, len(sample_ids))
    model = MiniBatchKMeans(n_clusters=clusters, random_state=SEED, n_init=3).fit(vectors)
    distances = np.linalg.norm(vectors - model.cluster_centers_[model.labels_], axis=1)
    groups = []
    for cluster in range(clusters):
        members = np.flatnonzero(model.labels_ == cluster)
        nearest = members[np.argsort(distances[members])][:REPRESENTATIVES]
        groups.append(
            {
                "members": [sample_ids[int(i)] for i in members],
                "representatives": [sample_ids[int(i)] for i in nearest],
            }
        )
    groups.sort(key=lambda g: -len(g["members"]))
    return [{"group": number, "size": len(g["members"]), **g} for number, g in enumerate(groups)]
