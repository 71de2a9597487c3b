"""The vendor's training workbench: the seed's ``/yolo/*`` training API over data sets, models and
jobs kept under one root folder (``inferpack workbench --root DIR``). Vendor-side only: it needs
the ``[train]`` extra and is never part of the operator's server image."""
