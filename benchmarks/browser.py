"""The studio in the browser: ONNX Runtime Web (WASM) beside Python ONNX Runtime, and stroke-to-output.

    python benchmarks/browser.py [--models unet_128:32,unet_256:64] [--strokes 20] [--size 256]

For each model (random weights: the time does not depend on them) this exports the page with
`export --web` (fp16 weights, the default; and fp32), then, in the same run and interleaved so both
see the same machine load (it is shared):
  1. Python ONNX Runtime on the same fp32/fp16 file, 1 and 2 intra-op threads: ms per --size² frame;
  2. Debian's Chromium (headless, Playwright) on the exported page, from file:// (WASM, 1 thread)
     and from `python -m http.server` (cross-origin isolated by the page's service worker: WASM,
     2 threads): a --size² image is opened, then --strokes strokes are drawn; per stroke the page's
     own figures: inference ms (session.run in the worker) and stroke-to-output ms (last edit of the
     stroke to the output drawn), and where the stroke's last edit spent it (median ms per step:
     wait until sent to the worker, to_worker (the stage in progress of a preempted stale run,
     pix2pix.export.stages), prepare, inference, finish, from_worker, draw), and each stage's own
     ms (session.run alone: the longest, and sum(s^2)/(2 sum(s)), the average wait of an edit
     arriving at a random moment);
  3. for the first model, `pix2pix serve` (ONNX Runtime backend) with the studio drawing on a fresh
     canvas at the model's training size: stroke-to-output in server mode beside its forward, and in
     browser mode (`/?run=browser`), each with its steps;
and prints the compute floor (FLOPs / measured matmul rate) beside the frame times. Only 127.0.0.1
and files are touched (ONNX Runtime Web comes from the pix2pix cache, fetched once if missing).

Per-frame engine time, browser beside native on the same threads: in each page the loaded worker
session is timed alone (window.pix2pixEngine.bench: session.run on a --size² frame, no canvas or
messaging; the stages joined into one graph where the export holds it, export.web.WHOLE, as the
edit that ends a stroke runs, else the stages), alternating --rounds times with Python ONNX
Runtime on the same file and the same number of intra-op threads, so both see the same load,
each side after a short pause (PAUSE_S: the other side's thread pool would otherwise still be
spinning on the cores); medians per side.

    --upsample resize   the demo's decoder (`make demo` trains with the modern recipe); the page
                        runs each resize-conv as one transposed convolution (inference.inference_graph)
    --profile           ONNX Runtime Web's own profiler in the page (3 runs): time share per op
                        type and the top nodes. Shares stay meaningful on a loaded machine; the
                        absolute times do not (the profiler also adds its own cost).
    --stages-ab         instead of the above: the fp32 page with its model whole (one session, as
                        before pix2pix.export.stages: pen-up waits for the stale run), as
                        exported ("stages": pen-up preempts it), and in as many stages with its big
                        convolutions split ("split", export.stages.split_convs, off by default),
                        in turns, from file:// and http:
                        on one translation worker (?workers=1; --pool-ab measures two):
                        stroke-to-output (--strokes per side), its steps, per-frame engine time,
                        and each stage's own ms (session.run alone, median over --rounds runs):
                        the longest is the most a preempting edit waits for the stage in progress,
                        sum(s^2)/(2 sum(s)) what an edit arriving at a random moment waits on
                        average; beside them each stage's weighted multiply-adds (export.stages).
                        "split" against "stages": what splitting the big convolutions gains
                        (the longest stage) and costs (engine-only frame: a Concat per split
                        convolution, its input read once per part), on the same machine load.
    --stage-macs 150,100  with --stages-ab: the same model also split and cut at these M weighted
                        multiply-adds per stage (export.stages.STAGE_MACS is 200), one more page each.
    --pool-ab           instead of the above: the fp32 page with one translation worker against the
                        pool of two (inbrowser.js; the URL parameters ?workers=1|2 and ?threads=N),
                        in turns: from file:// (1 WASM thread per session) 1 worker vs 2 (one kept
                        free while the pen is down, as the page does) vs 2 both translating while
                        the pen is down (?pen_runs=2), and over http (cross-origin isolated)
                        1 worker x 2 threads vs 2 x 2 vs 2 x 1;
                        per variant stroke-to-output (--strokes), the inference median, their
                        difference, the steps of a stroke's last edit and the outputs shown per stroke.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # two processes share the cores: no spinning

import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]  # tests/serve before benchmarks/serve.py

from common import count_flops, matmul_rate  # noqa: E402
from serve.serve_support import free_port, wait_healthy  # noqa: E402
from browser_support import ARGS, CHROMIUM, SERVED_SYNC  # noqa: E402
from web.web_support import (IN_SYNC, breakdown, export, lively_model, stroke_entries,  # noqa: E402
                             summary)


def ort_frame_ms(model: bytes, size: int, threads: int, repeats: int) -> float:
    from pix2pix.inference.onnx import ort_session, run_onnx

    s = ort_session(model, threads=threads)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    run_onnx(s, x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run_onnx(s, x)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


# Seconds each side waits before its frames in `interleaved`. Both runtimes' thread pools keep
# spinning for a while after a run: without a pause, the side that ran last takes CPU from the side
# timed next on the 2 cores. Measured 2026-12-07 (AVX-512 EPYC, fp16 pages over http, 2 threads):
# with no pause the page's 128² frame read 12.9 ms against 4.9 ms with it, and native ONNX Runtime's
# 256² frame 8.4-8.9 ms against 5.8-6.6 ms; the 1-thread pages were unaffected.
PAUSE_S = 0.1


def interleaved(browser, url: str, model: bytes, size: int, rounds: int, frames: int = 3) -> tuple[dict, list, list]:
    """(engine info, browser ms, native ms): ``rounds`` alternations of ``frames`` page frames
    (the worker's session alone) and ``frames`` Python ORT frames on the page's thread count, each
    side after a pause of ``PAUSE_S`` (so neither is timed against the other's spinning threads)."""
    page = browser.new_page(viewport={"width": 1280, "height": 820})
    page.goto(url)
    page.wait_for_function(IN_SYNC, timeout=300000)
    info = page.evaluate("() => window.pix2pixEngine.info()")
    from pix2pix.inference.onnx import ort_session, run_onnx

    s = ort_session(model, threads=info["threads"])
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    run_onnx(s, x)
    page.evaluate(f"() => window.pix2pixEngine.bench({size}, 1)")  # warm: kernels for this size
    web, native = [], []
    for _ in range(rounds):
        time.sleep(PAUSE_S)
        web += page.evaluate(f"() => window.pix2pixEngine.bench({size}, {frames})")
        time.sleep(PAUSE_S)
        for _ in range(frames):
            t = time.perf_counter()
            run_onnx(s, x)
            native.append((time.perf_counter() - t) * 1000)
    page.close()
    return info, web, native


def profile_page(browser, url: str, size: int, runs: int = 3) -> None:
    """Print ONNX Runtime Web's per-op-type time shares for the page's model at size²."""
    import collections
    import json

    page = browser.new_page()
    lines: list[str] = []
    page.on("console", lambda m: lines.append(m.text))
    page.goto(url)
    page.wait_for_function(IN_SYNC, timeout=300000)
    info = page.evaluate("() => window.pix2pixEngine.info()")
    page.evaluate(f"() => window.pix2pixEngine.profile({size}, {runs})")
    page.wait_for_timeout(500)
    page.close()
    nodes = []
    for line in lines:
        line = line.strip().rstrip(",")
        if line.startswith("{") and '"Node"' in line and "_kernel_time" in line:
            try:
                nodes.append(json.loads(line))
            except ValueError:
                pass
    if not nodes:
        print(f"  profile: no events from ONNX Runtime Web ({info})")
        return
    by_op, count, by_node = collections.Counter(), collections.Counter(), collections.Counter()
    shapes = {}
    for e in nodes:
        op = e["args"]["op_name"]
        by_op[op] += e["dur"]
        count[op] += 1
        by_node[e["name"]] += e["dur"]
        shapes[e["name"]] = (op, e["args"]["input_type_shape"][:2], e["args"]["output_type_shape"])
    total = sum(by_op.values())
    print(f"  profile [{info['ep']}, {info['threads']} thread(s)], {size}², {runs} runs: kernel time "
          f"{total / runs / 1000:.0f} ms/run (profiler on)")
    for op, us in by_op.most_common():
        print(f"    {op:22s} {100 * us / total:5.1f}%  ({count[op] // runs} nodes)")
    for name, us in by_node.most_common(8):
        op, inputs, outputs = shapes[name]
        dims = lambda t: "x".join(map(str, next(iter(t.values()))))  # noqa: E731
        print(f"    {100 * us / total:5.1f}%  {op} {' '.join(dims(t) for t in inputs)} -> {' '.join(dims(t) for t in outputs)}")


def page_figures(browser, url: str, image: Path, strokes: int, sync: str = IN_SYNC) -> dict:
    page = browser.new_page(viewport={"width": 1280, "height": 820})
    page.goto(url)
    page.wait_for_function(sync, timeout=300000)
    workers = page.evaluate("() => window.pix2pixEngine.ready()") if sync == IN_SYNC else 0  # the pool loaded
    if image is not None:
        page.set_input_files("#upload", str(image))
        page.wait_for_function(f"() => document.getElementById('input').width === {Image.open(image).width}")
        page.wait_for_function(sync, timeout=300000)
    n0 = len(page.evaluate("() => window.pix2pixStats.shown"))
    last = stroke_entries(page, strokes, sync)
    shown = page.evaluate("() => window.pix2pixStats.shown")[n0:]
    engine = page.locator("#engine").inner_text()
    page.close()
    cost = [e["inference_ms"] if e["inference_ms"] is not None else e["forward_ms"] for e in shown]
    return {"stroke": [e["stroke_to_output_ms"] for e in last], "cost": cost, "engine": engine,
            "steps": breakdown(last), "workers": workers, "shown": len(shown)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="unet_128:32,unet_256:64")
    ap.add_argument("--strokes", type=int, default=20)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--no-served", action="store_true", help="skip the `pix2pix serve` part")
    ap.add_argument("--upsample", default="transpose", choices=("transpose", "resize"),
                    help="the U-Net decoder (the demo's is resize)")
    ap.add_argument("--rounds", type=int, default=10, help="browser/native alternations (3 frames each)")
    ap.add_argument("--profile", action="store_true", help="print ONNX Runtime Web's per-op time shares")
    ap.add_argument("--stages-ab", action="store_true",
                    help="instead: the fp32 page with its model whole (no preemption, as before "
                         "pix2pix.export.stages) against in stages, interleaved, from file:// and http")
    ap.add_argument("--stage-macs", default="",
                    help="with --stages-ab: also cut the model at these M weighted multiply-adds per stage "
                         "(comma-separated), one more page each")
    ap.add_argument("--pool-ab", action="store_true",
                    help="instead: the fp32 page with one translation worker against two (?workers=1|2), "
                         "in turns, from file:// and http")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from pix2pix.models import build_generator
    from pix2pix.config import ModelConfig
    from pix2pix.export.web import read_model_bytes

    print(f"CPU: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start (shared machine)")
    rates = {t: (torch.set_num_threads(t), matmul_rate(1024, 5))[1] for t in (1, 2)}
    print(f"matmul rate: {rates[1] / 1e9:.0f} GFLOP/s on 1 thread, {rates[2] / 1e9:.0f} on 2")
    work = Path(tempfile.mkdtemp(prefix="pix2pix-browser-bench-"))
    rng = np.random.default_rng(1)
    image = work / "input.png"
    Image.fromarray(np.kron(rng.integers(0, 256, (args.size // 8, args.size // 8, 3), dtype=np.uint8),
                            np.ones((8, 8, 1), np.uint8))).save(image)
    rows, engines = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        for k, spec in enumerate(args.models.split(",")):
            arch, base = spec.split(":")
            train = 128 if arch == "unet_128" else 256
            model_dir = lively_model(work / f"{arch}-{base}", arch, int(base), train, upsample=args.upsample)
            g = build_generator(ModelConfig(generator=arch, base_channels=int(base), upsample=args.upsample)).eval()
            with torch.no_grad():
                flops = count_flops(lambda: g(torch.zeros(1, 3, args.size, args.size)))
            if args.pool_ab:  # this comparison alone
                print(f"\n{arch}/{base}, {args.size}², one translation worker against a pool of two:")
                pool_ab(browser, export(model_dir, work / f"{arch}-{base}-fp32", fp32=True).folder, work, image,
                        args.strokes)
                continue
            if args.stages_ab:  # this comparison alone (the full run and it together take > 5 min)
                print(f"\n{arch}/{base}, {args.size}², the model whole against in stages:")
                stages_ab(browser, export(model_dir, work / f"{arch}-{base}-fp32", fp32=True).folder, model_dir, work,
                          image, args.strokes, args.size, args.rounds,
                          [float(v) * 1e6 for v in args.stage_macs.split(",") if v])
                continue
            t = time.perf_counter()
            pages = {kind: export(model_dir, work / f"{arch}-{base}-{kind}", fp32=kind == "fp32")
                     for kind in ("fp16", "fp32")}
            print(f"\n{arch}/{base}: {flops / 1e9:.1f} GFLOP per {args.size}² frame; floor "
                  f"{flops / rates[1] * 1000:.0f} ms (1 thread), {flops / rates[2] * 1000:.0f} ms (2); "
                  f"exports took {time.perf_counter() - t:.0f} s")
            for kind, r in pages.items():
                print(f"  export {kind}: model {r.model_mb:.1f} MB + runtime {r.runtime_mb:.1f} MB = folder "
                      f"{r.folder_mb:.1f} MB (WASM only; WebGPU adds 26.8 MB raw, 35.9 MB in the folder)")
            port, http = static_server(work)
            try:
                for kind in ("fp16", "fp32"):
                    folder = pages[kind].folder
                    model = read_model_bytes(folder)
                    # Interleaved: native, page from disk, native, page over HTTP.
                    native1 = ort_frame_ms(model, args.size, 1, 10)
                    disk = page_figures(browser, (folder / "index.html").as_uri(), image, args.strokes)
                    native2 = ort_frame_ms(model, args.size, 2, 10)
                    served = page_figures(browser, f"http://127.0.0.1:{port}/{folder.name}/", image, args.strokes)
                    for label, url in (("file://", (folder / "index.html").as_uri()),
                                       ("http.server", f"http://127.0.0.1:{port}/{folder.name}/")):
                        info, web, nat = interleaved(browser, url, model, args.size, args.rounds)
                        ratio = statistics.median(web) / statistics.median(nat)
                        engines.append((f"{arch}/{base} {kind}", label, f"{info['ep']} {info['threads']}t",
                                        statistics.median(web), statistics.median(nat), ratio))
                        print(f"  {kind} {label:11s} engine only, interleaved x{args.rounds}: browser "
                              f"{statistics.median(web):.0f} ms/frame vs native ORT {statistics.median(nat):.0f} ms "
                              f"on {info['threads']} thread(s) ({ratio:.2f}x)")
                        if info.get("stages", 1) > 1:
                            ms = stage_ms(browser, url, args.size, args.rounds)
                            print(f"  {kind} {label:11s} per stage (median ms): longest {max(ms):.1f}, random-moment "
                                  f"wait {sum(m * m for m in ms) / (2 * sum(ms)):.1f}; [{' '.join(f'{m:.1f}' for m in ms)}]")
                        if args.profile and kind == "fp16":
                            profile_page(browser, url, args.size)
                    for label, fig, native in (("file://", disk, native1), ("http.server", served, native2)):
                        wasm = statistics.median(fig["cost"])
                        rows.append((f"{arch}/{base} {kind}", label, fig["engine"], wasm, native, wasm / native,
                                     statistics.median(fig["stroke"])))
                        print(f"  {kind} {label:11s} [{fig['engine']}]: WASM {wasm:.0f} ms/frame vs Python ORT "
                              f"{native:.0f} ms ({wasm / native:.2f}x); stroke-to-output {summary(fig['stroke'])}")
                        print(f"    where a stroke's last edit spent it (median ms): {fig['steps']}")
            finally:
                http.terminate()
                http.wait()
            if k == 0 and not args.no_served:
                served_studio(browser, model_dir, args.strokes, train)
        browser.close()
    if not rows:
        return
    print("\nmodel            page         engine                          WASM ms  ORT ms  ratio  stroke->output ms")
    for r in rows:
        print(f"{r[0]:16s} {r[1]:12s} {r[2]:31s} {r[3]:7.0f} {r[4]:7.0f} {r[5]:6.2f} {r[6]:9.0f}")
    print("\nper-frame engine time, interleaved (median ms; the same file and threads on both sides)")
    print("model            page         engine        browser  native  ratio")
    for r in engines:
        print(f"{r[0]:16s} {r[1]:12s} {r[2]:12s} {r[3]:8.0f} {r[4]:7.0f} {r[5]:6.2f}")


def static_server(folder: Path) -> tuple[int, subprocess.Popen]:
    """``python -m http.server`` on ``folder`` at 127.0.0.1 (its port, its process: the caller
    terminates it), given a second to start listening."""
    port = free_port()
    http = subprocess.Popen([sys.executable, "-m", "http.server", "-d", str(folder), "--bind", "127.0.0.1", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    return port, http


def stage_ms(browser, url: str, size: int, runs: int) -> list[float]:
    """Each stage's median ms (its session.run alone) over ``runs`` forward passes at size²."""
    page = browser.new_page()
    page.goto(url)
    page.wait_for_function(IN_SYNC, timeout=300000)
    page.evaluate(f"() => window.pix2pixEngine.bench({size}, 1)")  # warm: kernels for this size
    runs_ms = page.evaluate(f"() => window.pix2pixEngine.benchStages({size}, {runs})")
    page.close()
    return [statistics.median(r[k] for r in runs_ms) for k in range(len(runs_ms[0]))]


def stages_ab(browser, folder: Path, model_dir: Path, work: Path, image: Path, strokes: int, size: int,
              rounds: int, stage_macs: list[float] = ()) -> None:
    """Stroke-to-output and per-frame time of ``folder``'s page (the fp32 export of ``model_dir``)
    with its model whole (one session: a stroke's last edit waits for the stale run, as before
    export.stages), as exported (``stages``: pen-up preempts the stale run), and in as many stages
    with its big convolutions split (``split``, export.stages.split_convs), in turns, from file:// and over http (2 threads),
    on one translation worker (?workers=1);
    with ``stage_macs``, also split and cut at those weighted multiply-adds per stage. Then each stage's own ms."""
    import base64
    import json
    import shutil

    from pix2pix.export.stages import SPLIT_SHARE, split_stages, stage_work
    from pix2pix.export.web import _B64, MODEL, _onnx_bytes, _wrapper
    from pix2pix.inference.translator import Translator

    # The web graph as exported, before any cut or split (read_model_bytes would give the split one).
    model = _onnx_bytes(Translator.from_pretrained(model_dir, device="cpu"), model_dir, True, work)[0]
    text = (folder / "model.onnx.js").read_text()
    stages = text.count(f'["{MODEL}#')
    entries = {json.loads(name): data for name, data in _B64.findall(text)}
    parts = {"stages": [base64.b64decode(entries[f"{MODEL}#{k}"]) for k in range(stages)],
             "split": split_stages(model, stages, split_above=SPLIT_SHARE)}
    extra = {f"@{m / 1e6:.0f}M": m for m in stage_macs}
    parts.update({label: split_stages(model, stage_macs=m, split_above=SPLIT_SHARE) for label, m in extra.items()})
    counts, copies = {"whole": 1, **{label: len(p) for label, p in parts.items()}}, {}
    for label in ("whole", "stages", "split", *extra):
        copy = work / f"{folder.name}-{label.replace('@', 'at')}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(folder, copy)
        if label == "whole":
            (copy / "model.onnx.js").write_text(_wrapper({MODEL: model}))
        elif label != "stages":
            (copy / "model.onnx.js").write_text(_wrapper({f"{MODEL}#{k}": p for k, p in enumerate(parts[label])}))
        copies[label] = copy
    port, http = static_server(work)
    try:
        for where in ("file://", "http.server"):
            figures: dict[str, dict[str, list]] = {}
            for label in list(copies) * 2:
                # One worker: the trade of the stages alone (from file:// the page would run two, --pool-ab).
                url = ((copies[label] / "index.html").as_uri() if where == "file://"
                       else f"http://127.0.0.1:{port}/{copies[label].name}/") + "?workers=1"
                fig = page_figures(browser, url, image, max(1, strokes // 2))
                f = figures.setdefault(label, {"stroke": [], "cost": [], "steps": []})
                f["stroke"] += fig["stroke"]
                f["cost"] += fig["cost"]
                f["steps"].append(fig["steps"])
                _, web, _ = interleaved(browser, url, model, size, max(1, rounds // 2))
                f.setdefault("frame", []).extend(web)
            for label, f in figures.items():
                stroke, cost = statistics.median(f["stroke"]), statistics.median(f["cost"])
                print(f"  stages A/B, fp32, {where:11s} model {label:7s} ({counts[label]} "
                      f"session(s)): stroke-to-output {summary(f['stroke'])}, inference median {cost:.0f} ms "
                      f"(+{stroke - cost:.0f} ms); engine-only frame {statistics.median(f['frame']):.0f} ms")
                print(f"    steps: {' | '.join(f['steps'])}")
            for label, cut in parts.items():
                url = (copies[label] / "index.html").as_uri() if where == "file://" \
                    else f"http://127.0.0.1:{port}/{copies[label].name}/"
                ms = stage_ms(browser, url, size, max(3, rounds))
                macs = [m / 1e6 for m in stage_work(cut, size)]
                print(f"  per stage, {where:11s} model {label:7s} ({len(cut)}): longest {max(ms):.1f} ms, "
                      f"random-moment wait {sum(m * m for m in ms) / (2 * sum(ms)):.1f} ms, sum {sum(ms):.0f} ms; "
                      f"ms [{' '.join(f'{m:.1f}' for m in ms)}]; M weighted MACs [{' '.join(f'{m:.0f}' for m in macs)}]")
    finally:
        http.terminate()
        http.wait()


# --pool-ab's variants: (label, URL query) per place the page is opened from.
POOL_VARIANTS = {
    "file://": [("1 worker", "?workers=1"), ("2 workers", "?workers=2"), ("2, pen 2", "?workers=2&pen_runs=2")],
    "http.server": [("1 worker", "?workers=1"), ("2 workers", "?workers=2"), ("2 x 1 thread", "?workers=2&threads=1")],
}


def pool_ab(browser, folder: Path, work: Path, image: Path, strokes: int) -> None:
    """Stroke-to-output of ``folder``'s page with one translation worker and with the pool of two
    (inbrowser.js, ?workers=1|2; over http also two workers of one thread each, ?threads=1), in
    turns (each variant ``strokes`` // 2 strokes per turn, two turns), from file:// and over http."""
    port, http = static_server(work)
    try:
        for where, variants in POOL_VARIANTS.items():
            base = (folder / "index.html").as_uri() if where == "file://" else f"http://127.0.0.1:{port}/{folder.name}/"
            figures: dict[str, dict] = {}
            for label, query in variants * 2:
                fig = page_figures(browser, base + query, image, max(1, strokes // 2))
                f = figures.setdefault(label, {"stroke": [], "cost": [], "steps": [], "shown": 0, "strokes": 0})
                f["stroke"] += fig["stroke"]
                f["cost"] += fig["cost"]
                f["steps"].append(fig["steps"])
                f["shown"] += fig["shown"]
                f["strokes"] += len(fig["stroke"])
                f["engine"], f["workers"] = fig["engine"], fig["workers"]
            single = statistics.median(figures["1 worker"]["stroke"])
            for label, f in figures.items():
                stroke, cost = statistics.median(f["stroke"]), statistics.median(f["cost"])
                print(f"  pool A/B, fp32, {where:11s} {label:12s} [{f['engine']}; {f['workers']} worker(s)]: "
                      f"stroke-to-output {summary(f['stroke'])}, inference median {cost:.0f} ms "
                      f"(stroke - inference {stroke - cost:+.0f} ms; vs 1 worker {stroke - single:+.0f} ms); "
                      f"{f['shown'] / f['strokes']:.1f} outputs shown per stroke")
                print(f"    steps: {' | '.join(f['steps'])}")
    finally:
        http.terminate()
        http.wait()


def served_studio(browser, model_dir: Path, strokes: int, train: int) -> None:
    port, log = free_port(), model_dir.parent / "server.log"
    proc = subprocess.Popen([sys.executable, "-m", "pix2pix", "serve", "--port", str(port), "--model", str(model_dir)],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        for run, sync, path in (("server", SERVED_SYNC, "/"), ("browser", IN_SYNC, "/?run=browser"),
                                ("server", SERVED_SYNC, "/"), ("browser", IN_SYNC, "/?run=browser")):
            fig = page_figures(browser, url + path, None, strokes // 2, sync)
            what = "server forward" if run == "server" else "in-browser inference"
            print(f"  served studio, {run} mode, {train}² canvas [{fig['engine'] or 'server'}]: stroke-to-output "
                  f"{summary(fig['stroke'])}; {what} median {statistics.median(fig['cost']):.0f} ms")
            print(f"    where a stroke's last edit spent it (median ms): {fig['steps']}")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
