"""Side-by-side comparison of generators: size, compute, latency, and held-out quality.

Used at the close of `pix2pix distill` (teacher vs student) and by ``benchmarks/distill.py``
(teacher vs distilled student vs the same student trained from scratch). Quality is measured on
one split against the real target and against the teacher's output (how faithfully a student
copies its teacher).
"""
from __future__ import annotations

import logging
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import torch

from ..data import Jitter, PairedDataset, scan_pairs
from ..inference.translator import Translator
from .quality import Evaluator
from ..models.profile import profile

log = logging.getLogger(__name__)


@dataclass
class Row:
    name: str
    generator: str
    base_channels: int
    parameters: int
    macs: int  # at latency_size², transposed convs by input size
    macs_torchprofile: int  # the same, transposed convs by output size
    latency_ms: dict[str, float] = field(default_factory=dict)  # backend -> median ms, batch 1
    vs_target: dict[str, float] = field(default_factory=dict)
    vs_teacher: dict[str, float] = field(default_factory=dict)


def latency_ms(translator: Translator, *, size: int = 256, repeats: int = 15, warmup: int = 3) -> float:
    """Median wall time of one (1, C, size, size) translation, in milliseconds."""
    x = torch.rand(1, translator.in_channels, size, size) * 2 - 1
    for _ in range(warmup):
        translator.translate_tensor(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        translator.translate_tensor(x)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def eval_split(root: str | Path, split: str, *, in_channels: int, out_channels: int,
               direction: str) -> PairedDataset:
    """A held-out split as whole images (the Translator pads to the network's multiple)."""
    return PairedDataset(scan_pairs(root, split), jitter=Jitter("none", 256, 256, False), train=False,
                         in_channels=in_channels, out_channels=out_channels, direction=direction)


def compare_models(models: dict[str, str | Path], data_root: str | Path, *, split: str = "test",
                   teacher: Optional[str] = None, metrics: Sequence[str] = ("l1", "psnr", "lpips"),
                   backends: Sequence[str] = ("eager", "onnxruntime"), latency_size: int = 256,
                   max_items: Optional[int] = None, repeats: int = 15) -> list[Row]:
    """One :class:`Row` per model (name -> model path). ``teacher`` names the model the others
    are also scored against (default: the first)."""
    names = list(models)
    teacher = teacher or names[0]
    if teacher not in models:
        raise ValueError(f"teacher {teacher!r} is not among the models {names}")
    translators = {n: Translator.from_pretrained(p, device="cpu") for n, p in models.items()}
    info = translators[teacher].info
    dataset = eval_split(data_root, split, in_channels=info.model.in_channels,
                         out_channels=info.model.out_channels, direction=info.direction)
    n = len(dataset) if max_items is None else min(max_items, len(dataset))
    if n == 0:
        raise ValueError(f"{data_root}/{split} holds no pairs to compare on")
    evaluators = {(name, ref): Evaluator(metrics) for name in names for ref in ("target", "teacher")}
    for i in range(n):
        item = dataset[i]
        x, y = item["input"][None], item["target"][None]
        outputs = {name: t.translate_tensor(x) for name, t in translators.items()}
        for name, out in outputs.items():
            evaluators[name, "target"].add(out, y)
            evaluators[name, "teacher"].add(out, outputs[teacher])
    rows = []
    for name, t in translators.items():
        p = profile(t.generator, in_channels=t.in_channels, size=latency_size)
        lat = {}
        for backend in backends:
            timed = Translator(t.generator, t.info, device="cpu", backend=backend)
            lat[backend] = round(latency_ms(timed, size=latency_size, repeats=repeats), 2)
        scores = {ref: {k: round(v, 4) for k, v in evaluators[name, ref].result().items()
                        if k != "count"} for ref in ("target", "teacher")}
        rows.append(Row(name=name, generator=t.info.model.generator,
                        base_channels=t.info.model.base_channels, parameters=p.parameters,
                        macs=p.macs, macs_torchprofile=p.macs_torchprofile, latency_ms=lat,
                        vs_target=scores["target"], vs_teacher=scores["teacher"]))
    return rows


def format_table(rows: list[Row], *, latency_size: int = 256) -> str:
    """A Markdown table of ``rows``."""
    backends = list(rows[0].latency_ms) if rows else []
    metrics = list(rows[0].vs_target) if rows else []
    head = (["model", "generator", "params", f"GMAC@{latency_size}", "GMAC (torchprofile)"]
            + [f"{b} ms" for b in backends] + [f"{m} vs target" for m in metrics]
            + [f"{m} vs teacher" for m in metrics])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = ([r.name, f"{r.generator} w{r.base_channels}", f"{r.parameters:,}", f"{r.macs / 1e9:.3f}",
                  f"{r.macs_torchprofile / 1e9:.3f}"] + [f"{r.latency_ms[b]:.1f}" for b in backends]
                 + [f"{r.vs_target.get(m, float('nan')):.4f}" for m in metrics]
                 # Output identical to the teacher's (the teacher itself): PSNR's 200 dB cap says nothing.
                 + (["= teacher"] * len(metrics) if r.vs_teacher.get("l1") == 0 else
                    [f"{r.vs_teacher.get(m, float('nan')):.4f}" for m in metrics]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rows_to_dicts(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]


__all__ = ["Row", "compare_models", "format_table", "latency_ms", "rows_to_dicts", "eval_split"]
