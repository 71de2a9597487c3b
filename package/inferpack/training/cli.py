"""``inferpack train`` and ``inferpack evaluate``: the workbench's training and measuring without a server.

``train`` runs in the foreground in its model folder; run it again on the same ``--out`` and it
resumes from the last checkpoint (its settings come from the folder's train.json then).
PyTorch is imported only once a training starts, so the CLI stays light where the ``[train]``
extra is not installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from inferpack.bundle import SPEC_FILE
from inferpack.training.config import CONFIG_FILE, TrainConfig
from inferpack.training.layout import bundle_dir


def add_training_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = subparsers.add_parser("train", help="train a model on a data set into a bundle (needs .[train])")
    train.add_argument(
        "dataset", type=Path, help="YOLO-layout (property.json + data/) or class-folder data set"
    )
    train.add_argument("--task", choices=["classification", "detection"], required=True)
    train.add_argument("--out", type=Path, required=True, help="model folder (resumed when it holds a run)")
    train.add_argument("--name", help="model name written into model.json (default: --out's name)")
    train.add_argument("--epochs", dest="final_epoch", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--subdivisions", type=int, default=1)
    train.add_argument("--lr", type=float, default=0.001)
    train.add_argument("--size", type=int, default=0, help="input side, a multiple of 32 (default 96 / 256)")
    train.add_argument("--val-fraction", type=float, default=0.1)
    train.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints")
    train.add_argument("--threads", type=int, default=1, help="CPU threads (1 on a shared machine)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--source", type=Path, help="a model folder trained earlier to fine-tune from")
    train.add_argument("--device", default="cpu", help="where the network trains: cpu or cuda")
    train.set_defaults(handler=_train)


def extend_evaluate(parser: argparse.ArgumentParser) -> None:
    """``evaluate NAME DATASET`` queues a job on an installed service (inferpack.jobs); given a
    model folder (a bundle, or a training run's folder) it measures it here, through the same
    serving path, on a data set folder."""
    parser.description = (
        "evaluate NAME DATASET: a job on a service; evaluate MODEL_DIR DATASET_DIR: a bundle, here"
    )
    parser.add_argument("--threads", type=int, default=1, help="MODEL_DIR: CPU threads")
    service = parser.get_default("handler")
    parser.set_defaults(
        handler=lambda args: (
            _evaluate(args) if (bundle_dir(Path(args.name)) / SPEC_FILE).is_file() else service(args)
        )
    )


def _train(args: argparse.Namespace) -> int:
    out: Path = args.out
    if (out / CONFIG_FILE).exists():
        print(f"resuming the run in {out}", file=sys.stderr)
    else:
        if out.exists() and any(out.iterdir()):
            raise ValueError(f"{out} is not empty and holds no training run ({CONFIG_FILE})")
        from inferpack.training.samples import training_dataset

        training_dataset(
            args.dataset, args.task, check_images=True
        )  # refuse a bad one before making anything
        config = TrainConfig(
            dataset=str(args.dataset.resolve()),
            task=args.task,
            name=args.name or out.resolve().name,
            final_epoch=args.final_epoch,
            batch_size=args.batch_size,
            subdivisions=args.subdivisions,
            lr=args.lr,
            size=args.size,
            val_fraction=args.val_fraction,
            checkpoint_every=args.checkpoint_every,
            seed=args.seed,
            threads=args.threads,
            source=str(args.source.resolve()) if args.source else None,
            device=args.device,
        )
        out.mkdir(parents=True, exist_ok=True)
        config.save(out)
    from inferpack.training.run import run_training

    print(json.dumps(run_training(out), indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from inferpack.training.evaluate import evaluate_bundle
    from inferpack.training.samples import training_dataset

    dataset = training_dataset(Path(args.dataset))
    measures = evaluate_bundle(bundle_dir(Path(args.name)), dataset, dataset.items, args.threads)
    print(json.dumps(measures, indent=2))
    return 0
