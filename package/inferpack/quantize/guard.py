"""The accuracy guard: INT8 may cost at most ``max_drop`` points overall and ``max_class_drop``
points on any class against FP32, measured on the same labelled set; else pack refuses it."""

from __future__ import annotations

from dataclasses import dataclass

from inferpack.variants import Accuracy

MAX_DROP = 1.0  # points (percent) overall
MAX_CLASS_DROP = 3.0  # points on any one class


@dataclass(frozen=True)
class Guard:
    max_drop: float = MAX_DROP
    max_class_drop: float = MAX_CLASS_DROP

    def breaches(self, fp32: Accuracy, int8: Accuracy) -> list[str]:
        """What INT8 loses beyond the limits, one line each; empty when it may ship."""
        found = []
        # Rounded: a drop of exactly the limit is within it, whatever the float subtraction says.
        drop = round(100 * (fp32.overall - int8.overall), 6)
        if drop > self.max_drop:
            found.append(f"overall {fp32.metric} drops {drop:.2f} points (limit {self.max_drop:g})")
        for label, before in fp32.per_class.items():
            after = int8.per_class.get(label, 0.0)
            class_drop = round(100 * (before - after), 6)
            if class_drop > self.max_class_drop:
                found.append(f"class {label} drops {class_drop:.2f} points (limit {self.max_class_drop:g})")
        return found
