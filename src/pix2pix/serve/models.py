"""The models a server holds: each a name, a Translator and what clients need to know about it."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..checkpoint import is_checkpoint_dir
from ..inference.description import ModelDescription, count_parameters, describe
from ..inference.translator import Translator

log = logging.getLogger(__name__)

# Channel counts a PNG can carry and an uploaded image can be converted to.
IMAGE_CHANNELS = (1, 3, 4)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class ServedModel:
    name: str
    translator: Translator
    source: Path
    # Counted once at load (0 for a model loaded from an .onnx file: no PyTorch weights to count).
    parameters: int = 0

    @property
    def multiple(self) -> int:
        return self.translator.multiple

    def onnx_file(self) -> Path:
        """This model as an fp32 ONNX file: its own file if it was loaded from one, else the cached
        export (made once per set of weights)."""
        if self.translator.generator is None:
            return self.source
        from ..inference.onnx import cached_onnx

        return cached_onnx(self.translator.generator, self.translator.info)

    def describe(self) -> ModelDescription:
        """What ``GET /api/models`` says about this model (the web export's config.json says the same)."""
        return describe(self.translator, self.name, self.parameters)


def parse_model_spec(spec: str) -> tuple[str | None, Path]:
    """``NAME=DIR`` or ``DIR`` -> (name or None, path)."""
    name, sep, path = spec.partition("=")
    if sep and _NAME.match(name) and "/" not in name:
        return name, Path(path)
    return None, Path(spec)


def default_name(path: Path) -> str:
    """A readable name for a model directory: ``runs/maps`` -> ``maps``; ``.../maps/model`` ->
    ``maps``; a checkpoint ``runs/maps/checkpoints/step_00001000`` -> ``maps-step_00001000``;
    an exported ``maps.onnx`` -> ``maps`` (``export/model.onnx`` -> ``export``)."""
    path = path.resolve()
    if path.suffix.lower() == ".onnx":  # a file: its name without the extension names the model
        path = path.with_suffix("")
    if path.name == "model":
        path = path.parent
    if is_checkpoint_dir(path) and path.parent.parent.name:
        return f"{path.parent.parent.name}-{path.name}"
    raw = path.name or "model"
    return re.sub(r"[^A-Za-z0-9._-]", "-", raw)[:64] or "model"


def load_models(specs: Sequence[str], *, device: str = "auto",
                backend: Optional[str] = None) -> list[ServedModel]:
    """Load every ``NAME=DIR`` / ``DIR`` spec; names must end up unique, channels image-like."""
    if not specs:
        raise ValueError("no model given; pass --model DIR (a pretrained, checkpoint or run directory)")
    models: list[ServedModel] = []
    for spec in specs:
        name, path = parse_model_spec(spec)
        translator = Translator.from_pretrained(path, device=device, backend=backend)
        info = translator.info.model
        if info.in_channels not in IMAGE_CHANNELS or info.out_channels not in IMAGE_CHANNELS:
            raise ValueError(f"{path}: the model maps {info.in_channels} to {info.out_channels} "
                             f"channels; the server translates images (1, 3 or 4 channels)")
        if name is None:
            name = default_name(path)
            taken = {m.name for m in models}
            base, k = name, 2
            while name in taken:
                name, k = f"{base}-{k}", k + 1
        elif any(m.name == name for m in models):
            raise ValueError(f"two models are named {name!r}; give each --model NAME=DIR a unique name")
        models.append(ServedModel(name=name, translator=translator, source=path,
                                  parameters=count_parameters(translator)))
        log.info("model %s: %s from %s on %s", name, info.generator, path, translator.device)
    return models
