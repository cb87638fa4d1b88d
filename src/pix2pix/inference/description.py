"""The one description of a model for its users: what the server's ``GET /api/models`` lists, what
an exported web page's ``config.json`` starts with, and the API schema of both (FastAPI reads
this dataclass as the response model), so a new field is added here once."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

from .translator import Translator


@dataclass(frozen=True)
class ModelDescription:
    """A model as clients see it: enough to draw an input for it and to show what it is."""

    name: str
    generator: str
    base_channels: int
    parameters: int                 # 0 for a model loaded from an .onnx file (no weights to count)
    in_channels: int
    out_channels: int
    image_size: int                 # the training crop, in px (any size is translated)
    multiple: int                   # inputs are padded to multiples of this
    direction: str
    palette: Optional[list[list[int]]]  # [r, g, b] label colours of a label-map model, else None
    # "running" or "batch": whether batch norms use the saved statistics or each image's own (so a
    # client knows that a batch-statistics model's output of a region depends on the whole image).
    test_statistics: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_parameters(translator: Translator) -> int:
    """The generator's parameter count, 0 when it runs from an ONNX file."""
    generator = translator.generator
    return sum(p.numel() for p in generator.parameters()) if generator is not None else 0


def describe(translator: Translator, name: str, parameters: Optional[int] = None) -> ModelDescription:
    """The description of ``translator`` served or exported as ``name`` (``parameters`` counted
    when not given)."""
    info = translator.info
    return ModelDescription(
        name=name, generator=info.model.generator, base_channels=info.model.base_channels,
        parameters=count_parameters(translator) if parameters is None else parameters,
        in_channels=info.model.in_channels, out_channels=info.model.out_channels,
        image_size=info.image_size, multiple=translator.multiple, direction=info.direction,
        palette=info.palette, test_statistics=info.model.test_statistics)


__all__ = ["ModelDescription", "describe", "count_parameters"]
