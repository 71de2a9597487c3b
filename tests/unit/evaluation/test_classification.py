"""Classification measures equal scikit-learn's on the same predictions, to 1e-6."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from inferpack.evaluation.classification import evaluate_classification

CLASSES = ["cat", "dog", "bird", "fish", "frog"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_equals_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = 400
    truth_index = rng.integers(0, 4, count)  # "frog" never true: its recall is 0/0
    scores = rng.random((count, len(CLASSES)))
    scores[np.arange(count), truth_index] += rng.uniform(0, 1.2, count)  # mostly right
    ranked = [[CLASSES[j] for j in np.argsort(-row)] for row in scores]
    truth = [CLASSES[i] for i in truth_index]
    predicted = [r[0] for r in ranked]
    ours = evaluate_classification(truth, ranked, CLASSES, ks=(1, 2, 3))

    assert ours.accuracy == pytest.approx(metrics.accuracy_score(truth, predicted), abs=1e-6)
    for k in (1, 2, 3):
        reference = metrics.top_k_accuracy_score(truth_index, scores, k=k, labels=range(len(CLASSES)))
        assert ours.top_k[k] == pytest.approx(reference, abs=1e-6)
    p, r, f, s = metrics.precision_recall_fscore_support(truth, predicted, labels=CLASSES, zero_division=0)
    for i, name in enumerate(CLASSES):
        scores_here = ours.per_class[name]
        assert (scores_here.precision, scores_here.recall, scores_here.f1) == pytest.approx(
            (p[i], r[i], f[i]), abs=1e-6
        )
        assert scores_here.support == s[i]
    macro = metrics.f1_score(truth, predicted, labels=CLASSES, average="macro", zero_division=0)
    micro = metrics.f1_score(truth, predicted, labels=CLASSES, average="micro", zero_division=0)
    assert ours.macro_f1 == pytest.approx(macro, abs=1e-6)
    assert ours.micro_f1 == pytest.approx(micro, abs=1e-6)
    assert ours.mcc == pytest.approx(metrics.matthews_corrcoef(truth, predicted), abs=1e-6)
    assert ours.confusion == metrics.confusion_matrix(truth, predicted, labels=CLASSES).tolist()


def test_a_truth_label_the_model_lacks_is_counted_as_a_miss() -> None:
    ours = evaluate_classification(["cat", "zebra"], [["cat"], ["cat"]], ["cat", "dog"])
    assert ours.classes == ["cat", "dog", "zebra"]
    assert ours.accuracy == 0.5 and ours.confusion[2] == [1, 0, 0]
    assert ours.per_class["cat"].precision == 0.5 and ours.per_class["zebra"].recall == 0.0
