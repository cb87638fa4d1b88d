"""Latency of `POST /api/translate` against a real local server, beside the raw generator forward.

    python benchmarks/serve.py [--requests 30] [--clients 4] [--arch unet_256] [--size 256]

Builds a generator of the paper's size (unet_256, 64 base channels; random weights: the time does
not depend on them), saves it, starts `pix2pix serve` on 127.0.0.1 in its own process, and times,
interleaved so that both see the same machine load (it is shared):
  1. the raw forward pass of the same generator in this process, while the server is idle,
  2. one client sending a PNG of --size px, one request at a time: p50 / p95 round trip, and the
     server's own forward time from its X-Forward-Ms header;
then 3. --clients clients at once: throughput beside 1 / forward (batching shows here);
and with --studio N, 4. the studio in Debian's Chromium (headless, Playwright) drawing N strokes on
a fresh --size canvas, over the /api/live WebSocket (raw RGBA edits, the studio's default; and PNG
messages, `?live=png`) and over one POST per edit (`?transport=http`), in turns: stroke-to-output
as the page measures it (last edit of a stroke to its output shown) beside the server's forward,
against the goal <= 2 x forward + 10 ms, and for the socket where a stroke's last edit spent it
(median ms per step: wait for the socket, encode, network, server_wait (the rest of the forward
in progress when it arrived), decode, queue, forward, server_encode, show).
With --video SECONDS, only this instead: the studio's Video mode in Chromium with a fake camera
(a generated --size x --size clip at 60 fps), served the built-in model (or --model DIR), its
frames translated on the server (/api/live "frame" messages) and in the browser (`/?run=browser`,
ONNX Runtime Web), in turns, SECONDS in all after a warm-up: frames shown per second and the
per-frame latency (frame captured to output shown) as the page measures it, beside the server's
forward or the in-browser inference (goal: >= 15 fps at 256 x 256 with the built-in model).
Only 127.0.0.1 is contacted; every loop is bounded.

    python benchmarks/serve.py --arch unet_128 --base-channels 32 --size 128 --studio 20
    python benchmarks/serve.py --video 40 --size 256
"""
from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

# Two processes take turns on the cores here (this one's forward, then the server's). OpenMP
# threads that spin-wait after their work would steal the other process's time and distort both
# figures (seen: the in-process forward 3x slower than the same forward in the server). Set
# before torch loads OpenMP; the server inherits it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from pix2pix.checkpoint import PretrainedInfo, save_pretrained  # noqa: E402
from pix2pix.config import ModelConfig  # noqa: E402
from pix2pix.models import build_generator  # noqa: E402


def stop_server(proc: subprocess.Popen) -> None:
    """Ctrl-C the server (it finishes what it is doing), then kill it if it takes over 30 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, log: Path, backend: str = "auto") -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pix2pix", "serve", "--model", f"bench={model_dir}",
                             "--port", str(port), "--device", "cpu", "--backend", backend],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):  # at most ~2 minutes
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start:\n{log.read_text()}")


def chromium_version() -> str:
    try:
        out = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip().split("\n")[-1] or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values), q))


def studio_figures(url: str, strokes: int) -> None:
    """Stroke-to-output in the served studio over the /api/live WebSocket (raw RGBA edits, and the
    PNG messages: ?live=png) and over one POST per edit (?transport=http), in turns (the same load
    for each), with where each stroke's milliseconds went."""
    import statistics

    tests = Path(__file__).resolve().parent.parent / "tests"
    sys.path.insert(0, str(tests))
    from playwright.sync_api import sync_playwright

    from browser_support import ARGS, CHROMIUM, SERVED_SYNC
    from web.web_support import breakdown, stroke_entries, summary

    variants = {"websocket": "/", "websocket png": "/?live=png", "http": "/?transport=http"}
    figures: dict[str, dict[str, list]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            for variant in list(variants) * 2:
                page = browser.new_page(viewport={"width": 1280, "height": 820})
                page.goto(url + variants[variant])
                page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=300000)
                page.wait_for_function(SERVED_SYNC, timeout=300000)
                assert page.evaluate("() => window.pix2pixStats.transport") == variant.split()[0]
                n0 = len(page.evaluate("() => window.pix2pixStats.shown"))
                last = stroke_entries(page, max(1, strokes // 2), SERVED_SYNC)
                shown = page.evaluate("() => window.pix2pixStats.shown")[n0:]
                fig = figures.setdefault(variant, {"stroke": [], "forward": [], "last": []})
                fig["stroke"] += [e["stroke_to_output_ms"] for e in last]
                fig["forward"] += [e["forward_ms"] for e in shown if e.get("forward_ms")]
                fig["last"] += last  # each stroke's last edit: what stroke-to-output is measured on
                page.close()
        finally:
            browser.close()
    for variant, fig in figures.items():
        forward = statistics.median(fig["forward"])
        print(f"studio over {variant:14}: stroke-to-output {summary(fig['stroke'])}; server forward median "
              f"{forward:.1f} ms -> goal 2 x forward + 10 = {2 * forward + 10:.0f} ms "
              f"({'met' if statistics.median(fig['stroke']) <= 2 * forward + 10 else 'missed'})")
        if variant != "http":
            print(f"  where a stroke's last edit spent it (median ms): {breakdown(fig['last'])}")


VIDEO_SHOWN = "() => [window.pix2pixStats.shown.length, performance.now()]"


def video_figures(model_dir: Path, size: int, seconds: float, tmp: Path) -> None:
    """Video mode on a served studio, the server and the browser path in turns (same load)."""
    import statistics

    tests = Path(__file__).resolve().parent.parent / "tests"
    sys.path.insert(0, str(tests))
    from playwright.sync_api import sync_playwright

    from browser_support import CHROMIUM
    from web.web_support import IN_SYNC, VIDEO_STATS, camera_args, write_y4m

    clip = tmp / "clip.y4m"
    write_y4m(clip, w=size, h=size, frames=120, fps=60)
    proc, url = start_server(model_dir, tmp / "server.log")
    figures: dict[str, dict[str, list[float]]] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=camera_args(clip), headless=True)
            try:
                for run in ("server", "browser") * 2:
                    page = browser.new_page(viewport={"width": 1280, "height": 820})
                    page.goto(url + ("/?run=browser" if run == "browser" else "/"))
                    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=300000)
                    if run == "browser":
                        page.wait_for_function(IN_SYNC, timeout=300000)
                    page.evaluate("""(size) => { const s = document.getElementById('video-size');
                      if (![...s.options].some((o) => o.value === String(size))) s.add(new Option(String(size), String(size)));
                      s.value = String(size); }""", size)
                    health0 = httpx.get(url + "/health").json()["live_frames"]
                    page.locator("#video-camera").click()
                    page.wait_for_function(f"() => ({VIDEO_STATS})()[0] >= 5", timeout=300000)  # warm-up
                    n0, t0 = page.evaluate(VIDEO_SHOWN)
                    time.sleep(seconds / 4)
                    n1, t1 = page.evaluate(VIDEO_SHOWN)
                    shown = page.evaluate("() => window.pix2pixStats.shown")[n0:n1]
                    width = page.evaluate("() => document.getElementById('input').width")
                    page.locator("#video-stop").click()
                    served = httpx.get(url + "/health").json()["live_frames"] - health0
                    assert width == size, (width, size)
                    assert run == "browser" or served >= n1 - n0, (served, n1 - n0)
                    fig = figures.setdefault(run, {"frames": [], "ms": [], "latency": [], "cost": []})
                    fig["frames"].append(n1 - n0)
                    fig["ms"].append(t1 - t0)
                    fig["latency"] += [e["stroke_to_output_ms"] for e in shown if e["stroke_to_output_ms"] is not None]
                    fig["cost"] += [e["forward_ms" if run == "server" else "inference_ms"] or 0 for e in shown]
                    page.close()
            finally:
                browser.close()
    finally:
        stop_server(proc)
    for run, fig in figures.items():
        fps = 1000 * sum(fig["frames"]) / sum(fig["ms"])
        what = "server forward" if run == "server" else "in-browser inference"
        print(f"video mode {size}x{size}, {run:7}: {fps:5.1f} fps ({sum(fig['frames'])} frames in "
              f"{sum(fig['ms']) / 1000:.1f} s; goal >= 15 fps: {'met' if fps >= 15 else 'missed'}); "
              f"frame to output p50 {pct(fig['latency'], 50):.0f} ms, p95 {pct(fig['latency'], 95):.0f} ms; "
              f"{what} median {statistics.median(fig['cost']):.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="unet_256")
    ap.add_argument("--base-channels", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--studio", type=int, default=0, metavar="STROKES",
                    help="also time the studio in Chromium: STROKES strokes per transport")
    ap.add_argument("--video", type=float, default=0, metavar="SECONDS",
                    help="only time the studio's Video mode (served and in-browser) for SECONDS in all")
    ap.add_argument("--model", type=Path, default=None,
                    help="with --video: the model to serve (default: the built-in model)")
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.video:
        from pix2pix.builtin import DEFAULT_BUILTIN, builtin_model_dir

        model = args.model or builtin_model_dir()
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (on a shared machine the "
              f"figures vary with the others' load); model {args.model or DEFAULT_BUILTIN}; Chromium {chromium_version()}")
        with tempfile.TemporaryDirectory() as tmp:
            video_figures(model, args.size, args.video, Path(tmp))
        return

    cfg = ModelConfig(generator=args.arch, base_channels=args.base_channels)
    generator = build_generator(cfg).eval()
    params = sum(p.numel() for p in generator.parameters())
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    png = buf.getvalue()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, load average {os.getloadavg()[0]:.1f} "
          f"(on a shared machine the figures vary with the others' load)")
    print(f"{args.arch}, {args.base_channels} base channels ({params:,} params), {args.size}x{args.size} "
          f"PNG input ({len(png):,} bytes)")

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_pretrained(generator, PretrainedInfo(model=cfg, image_size=args.size),
                                    Path(tmp) / "model")
        proc, url = start_server(model_dir, Path(tmp) / "server.log")
        try:
            # 1 and 2, interleaved: one raw forward in this process (the server idle), then one
            # request (this process idle), so both see the same load from whatever else runs.
            x = torch.rand(1, 3, args.size, args.size) * 2 - 1
            forwards, latencies, server_fwd = [], [], []
            with httpx.Client(base_url=url, timeout=120) as http, torch.inference_mode():
                for i in range(3 + args.requests):
                    t = time.perf_counter()
                    generator(x)
                    fwd = time.perf_counter() - t
                    t = time.perf_counter()
                    resp = http.post("/api/translate", content=png)
                    dt = time.perf_counter() - t
                    assert resp.status_code == 200, resp.text
                    assert Image.open(io.BytesIO(resp.content)).size == (args.size, args.size)
                    if i >= 3:  # the first rounds warm up allocators and oneDNN's kernels
                        forwards.append(fwd * 1000)
                        latencies.append(dt * 1000)
                        server_fwd.append(float(resp.headers["x-forward-ms"]))
            forward = pct(forwards, 50) / 1000
            p50, p95 = pct(latencies, 50), pct(latencies, 95)
            print(f"generator forward, in-process:            p50 {pct(forwards, 50):8.1f} ms, "
                  f"p95 {pct(forwards, 95):8.1f} ms")
            print(f"POST /api/translate, 1 client:            p50 {p50:8.1f} ms, p95 {p95:8.1f} ms"
                  f"   ({args.requests} of each, interleaved)")
            print(f"  -> request p50 / forward p50 = {p50 / (forward * 1000):.2f} (goal <= 1.5); "
                  f"/ the server's own forward p50 = {p50 / pct(server_fwd, 50):.2f}")
            overhead = np.asarray(latencies) - np.asarray(server_fwd)
            print(f"  the server's own forward (X-Forward-Ms) p50 {pct(server_fwd, 50):.1f} ms; the rest "
                  f"(HTTP, PNG decode + encode, queue) p50 {pct(overhead, 50):.1f} ms, "
                  f"p95 {pct(overhead, 95):.1f} ms")

            # 3. Several clients at once: the worker batches what is waiting.
            n_each = max(1, args.requests // args.clients)
            done, batches, errors = [], Counter(), []
            lock = threading.Lock()

            def client() -> None:
                with httpx.Client(base_url=url, timeout=300) as http:
                    for _ in range(n_each):
                        t = time.perf_counter()
                        resp = http.post("/api/translate", content=png)
                        with lock:
                            if resp.status_code != 200:
                                errors.append(resp.status_code)
                            else:
                                done.append((time.perf_counter() - t) * 1000)
                                batches[int(resp.headers["x-batch-size"])] += 1

            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=600)
            wall = time.perf_counter() - t0
            print(f"{args.clients} clients x {n_each} requests at once: {len(done) / wall:.2f} img/s "
                  f"(one forward at a time: {1 / forward:.2f} img/s), p50 {pct(done, 50):.0f} ms, "
                  f"p95 {pct(done, 95):.0f} ms, {len(errors)} errors, batch sizes {dict(sorted(batches.items()))}")
            if args.studio:
                studio_figures(url, args.studio)
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
