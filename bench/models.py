"""Model bundles the benchmarks serve: a ResNet-50-sized classifier and the demo models.

The ResNet-50 is the real architecture (bottleneck blocks 3-4-6-3, 25.6 M parameters,
4.1 GFLOPs at 224x224) with random weights, built with ``onnx.helper``: speed does not
depend on what the weights learned. Batch norm is folded into the convolutions, as every
exporter's optimiser does. It is written once under ``.cache/bench/`` (git-ignored).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "bench"
DEMO_MODELS = REPO / "package" / "inferpack" / "demo" / "models"
RESNET50_NAME = "resnet50-random"
OPSET = 17
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BenchModel:
    """A bundle folder and what the raw engine benchmark needs to know about it."""

    name: str
    directory: Path
    task: str
    input_name: str
    input_shape: tuple[int, int, int]  # one sample, without the batch axis

    @property
    def onnx_path(self) -> Path:
        return self.directory / "model.onnx"


class _GraphBuilder:
    """Collects nodes and initializers for a conv net, He-initialised so activations stay finite."""

    def __init__(self, seed: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._rng = np.random.default_rng(seed)
        self._count = 0

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{kind}{self._count}"

    def _weight(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        values = self._rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        self.initializers.append(numpy_helper.from_array(values, name))
        return name

    def conv(self, x: str, c_in: int, c_out: int, kernel: int, stride: int = 1, relu: bool = True) -> str:
        name = self._name("conv")
        w = self._weight(name + ".w", (c_out, c_in, kernel, kernel), c_in * kernel * kernel)
        b = self._weight(name + ".b", (c_out,), 1_000_000)  # folded batch-norm shift: near zero
        pad = kernel // 2
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, w, b],
                [name],
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[pad] * 4,
            )
        )
        return self.relu(name) if relu else name

    def relu(self, x: str) -> str:
        name = self._name("relu")
        self.nodes.append(helper.make_node("Relu", [x], [name]))
        return name

    def bottleneck(self, x: str, c_in: int, width: int, stride: int) -> str:
        c_out = width * 4
        y = self.conv(x, c_in, width, 1)
        y = self.conv(y, width, width, 3, stride)
        y = self.conv(y, width, c_out, 1, relu=False)
        shortcut = x if stride == 1 and c_in == c_out else self.conv(x, c_in, c_out, 1, stride, relu=False)
        name = self._name("add")
        self.nodes.append(helper.make_node("Add", [y, shortcut], [name]))
        return self.relu(name)


def build_resnet50(path: Path, classes: int = 1000, seed: int = 0) -> None:
    g = _GraphBuilder(seed)
    x = g.conv("input", 3, 64, 7, 2)
    pooled = "stem_pool"
    g.nodes.append(
        helper.make_node("MaxPool", [x], [pooled], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    )
    x, c_in = pooled, 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for index in range(blocks):
            x = g.bottleneck(x, c_in, width, stride if index == 0 else 1)
            c_in = width * 4
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    g.nodes.append(helper.make_node("Flatten", ["gap"], ["features"], axis=1))
    fc_w = g._weight("fc.w", (classes, c_in), c_in)
    fc_b = g._weight("fc.b", (classes,), 1_000_000)
    g.nodes.append(helper.make_node("Gemm", ["features", fc_w, fc_b], ["logits"], transB=1))
    graph = helper.make_graph(
        g.nodes,
        "resnet50_random",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)


def resnet50_bundle(cache: Path = CACHE) -> BenchModel:
    """The ResNet-50-sized bundle, built on first use."""
    directory = cache / RESNET50_NAME
    spec = {
        "schema_version": 1,
        "name": RESNET50_NAME,
        "version": "1.0.0",
        "task": "classification",
        "labels": [f"class_{i:03d}" for i in range(1000)],
        "input": {
            "name": "input",
            "width": 224,
            "height": 224,
            "layout": "NCHW",
            "color": "RGB",
            "resize": "stretch",
            "scale": 1 / 255,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        },
        "output": {"type": "logits"},
    }
    if not (directory / "model.onnx").exists():
        print(f"building {directory / 'model.onnx'} (ResNet-50, random weights) ...", flush=True)
        build_resnet50(directory / "model.onnx")
    (directory / "model.json").write_text(json.dumps(spec, indent=2))
    return BenchModel(RESNET50_NAME, directory, "classification", "input", (3, 224, 224))


def bundle_at(directory: Path) -> BenchModel:
    """Any bundle folder, described from its model.json."""
    spec = json.loads((directory / "model.json").read_text())
    inp = spec["input"]
    shape = (3, inp["height"], inp["width"])
    if inp.get("layout", "NCHW") == "NHWC":
        shape = (inp["height"], inp["width"], 3)
    return BenchModel(directory.name, directory, spec["task"], inp.get("name") or "", shape)


def demo_bundles() -> list[BenchModel]:
    """The embedded demo models, when they exist in this checkout."""
    return [bundle_at(spec.parent) for spec in sorted(DEMO_MODELS.glob("*/model.json"))]


def pick(names: str, tasks: tuple[str, ...] = ("classification", "detection")) -> list[BenchModel]:
    """``"resnet50,demo"`` -> bundles; "demo" is every embedded demo model of ``tasks`` present."""
    models: list[BenchModel] = []
    for name in names.split(","):
        if name == "resnet50":
            models.append(resnet50_bundle())
        elif name == "demo":
            found = [m for m in demo_bundles() if m.task in tasks]
            if not found:
                print(f"(no demo {'/'.join(tasks)} model in {DEMO_MODELS}: skipped)")
            models.extend(found)
        else:
            raise SystemExit(f"unknown model {name!r}: use resnet50 and/or demo")
    return models


if __name__ == "__main__":
    print(resnet50_bundle().directory)
