// pix2pix studio: draw on the input canvas, see the translation follow.
//
// The canvas pixels live in one ImageData (`pixels`) that every tool edits directly: strokes are
// stamped discs without anti-aliasing, so a label map keeps exactly its palette colours (a blended
// edge pixel would be a class the model never saw), and flood fill finds clean region borders.
//
// Translation requests: at most one is in flight. Edits made meanwhile mark the canvas dirty and
// are sent as one request when the answer arrives, so while drawing the output updates as fast as
// the server answers, and requests never pile up. Switching model aborts the request in flight;
// an answer older than the one shown, or aborted, is dropped (the newest request wins).
//
// Two ways to translate, one page: on the server (POST /api/translate), or in this browser
// (ONNX Runtime Web in a Web Worker, worker.js), chosen by `?run=browser` or the Run menu on a
// served studio, and always in a page written by `pix2pix export --web` (its web.js sets
// PIX2PIX_WEB). Both follow the same rule: one translation in flight, the latest edit next.
"use strict";

// Edits arriving in the same task (a burst of pointer moves) go as one request; a longer wait would
// add itself to every stroke's latency, and one-in-flight already keeps requests from piling up.
const DEBOUNCE_MS = 0;
const MAX_UNDO = 64;
const MAX_SIDE = 1024;         // opened images are scaled down to this on their longer side
const FILL_TOLERANCE = 32;     // per channel, so fill also works on JPEG-noisy uploads
const WHITE = [255, 255, 255];
const DEFAULT_COLOURS = [
  [0, 0, 0], [255, 255, 255], [128, 128, 128], [200, 40, 40], [240, 140, 30], [240, 220, 50],
  [60, 160, 60], [40, 90, 200], [130, 60, 170], [120, 80, 40],
];

const $ = (id) => document.getElementById(id);
const canvas = $("input");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
const output = $("output");

const state = {
  models: [], model: null, tool: "pen", size: 6, colour: [0, 0, 0], background: WHITE,
  undo: [], redo: [], version: 0, touched: false, drawing: false, last: null,
};
const net = { controller: null, dirty: false, timer: 0, seq: 0, shownSeq: 0, url: null };
const WEB = window.PIX2PIX_WEB || null;  // an exported page: its config and file map
const RUN = WEB || new URLSearchParams(location.search).get("run") === "browser" ? "browser" : "server";
// performance.now() of each canvas version's edit, and what each shown output cost: read by the
// latency tests and benchmarks/browser.py (stroke-to-output as the page itself measures it).
const editTimes = new Map();
window.pix2pixStats = { run: RUN, shown: [] };
let pixels = ctx.createImageData(canvas.width, canvas.height);

// ---- canvas pixels ---------------------------------------------------------------------------

function render() { ctx.putImageData(pixels, 0, 0); }

function resetCanvas(width, height, rgb) {
  canvas.width = width; canvas.height = height;
  pixels = ctx.createImageData(width, height);
  const d = pixels.data;
  for (let i = 0; i < d.length; i += 4) { d[i] = rgb[0]; d[i + 1] = rgb[1]; d[i + 2] = rgb[2]; d[i + 3] = 255; }
  render();
}

function copyPixels(src) { return new ImageData(new Uint8ClampedArray(src.data), src.width, src.height); }

function restore(snapshot) {
  if (canvas.width !== snapshot.width || canvas.height !== snapshot.height) {
    canvas.width = snapshot.width; canvas.height = snapshot.height;
  }
  pixels = snapshot;
  render();
}

function changed() {
  state.version += 1;
  editTimes.set(state.version, performance.now());
  state.touched = true;
  canvas.dataset.version = String(state.version);
  scheduleTranslate();
}

// Save the canvas before an edit, so Undo can bring it back.
function checkpoint() {
  state.undo.push(copyPixels(pixels));
  if (state.undo.length > MAX_UNDO) state.undo.shift();
  state.redo = [];
  updateHistoryButtons();
}

function undo() {
  if (!state.undo.length) return;
  state.redo.push(copyPixels(pixels));
  restore(state.undo.pop());
  updateHistoryButtons();
  changed();
}

function redo() {
  if (!state.redo.length) return;
  state.undo.push(copyPixels(pixels));
  restore(state.redo.pop());
  updateHistoryButtons();
  changed();
}

function updateHistoryButtons() {
  $("undo").disabled = state.undo.length === 0;
  $("redo").disabled = state.redo.length === 0;
}

// A filled disc of the brush size at (cx, cy) in canvas pixels, hard-edged.
function stamp(cx, cy, rgb) {
  const r = Math.max(0.75, state.size / 2), w = pixels.width, h = pixels.height, d = pixels.data;
  const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(w - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(h - 1, Math.ceil(cy + r));
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      if (dx * dx + dy * dy <= r * r) {
        const i = (y * w + x) * 4;
        d[i] = rgb[0]; d[i + 1] = rgb[1]; d[i + 2] = rgb[2]; d[i + 3] = 255;
      }
    }
  }
}

function strokeTo(x0, y0, x1, y1, rgb) {
  const step = Math.max(0.5, state.size / 4);
  const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / step));
  for (let k = 1; k <= n; k++) stamp(x0 + ((x1 - x0) * k) / n, y0 + ((y1 - y0) * k) / n, rgb);
}

// 4-connected fill of the region around (sx, sy) whose colour is within FILL_TOLERANCE of the
// seed's. Returns false when there was nothing to change.
function floodFill(sx, sy, rgb) {
  const w = pixels.width, h = pixels.height, d = pixels.data;
  const s = (sy * w + sx) * 4;
  const seed = [d[s], d[s + 1], d[s + 2], d[s + 3]];
  if (seed[0] === rgb[0] && seed[1] === rgb[1] && seed[2] === rgb[2] && seed[3] === 255) return false;
  const matches = (p) => {
    const i = p * 4;
    return Math.abs(d[i] - seed[0]) <= FILL_TOLERANCE && Math.abs(d[i + 1] - seed[1]) <= FILL_TOLERANCE &&
      Math.abs(d[i + 2] - seed[2]) <= FILL_TOLERANCE && Math.abs(d[i + 3] - seed[3]) <= FILL_TOLERANCE;
  };
  const seen = new Uint8Array(w * h);
  const stack = [sy * w + sx];
  seen[sy * w + sx] = 1;
  while (stack.length) {
    const p = stack.pop(), x = p % w, i = p * 4;
    d[i] = rgb[0]; d[i + 1] = rgb[1]; d[i + 2] = rgb[2]; d[i + 3] = 255;
    const next = [x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, p - w, p + w];
    for (const q of next) {
      if (q >= 0 && q < w * h && !seen[q] && matches(q)) { seen[q] = 1; stack.push(q); }
    }
  }
  return true;
}

function clearCanvas() {
  checkpoint();
  resetCanvas(canvas.width, canvas.height, state.background);
  changed();
}

// ---- pointer input (mouse, pen and touch alike) ----------------------------------------------

function canvasPoint(event) {
  const rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * (canvas.width / rect.width),
          (event.clientY - rect.top) * (canvas.height / rect.height)];
}

function strokeColour() { return state.tool === "eraser" ? state.background : state.colour; }

canvas.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  event.preventDefault();
  const [x, y] = canvasPoint(event);
  if (state.tool === "fill") {
    const px = Math.min(pixels.width - 1, Math.max(0, Math.floor(x)));
    const py = Math.min(pixels.height - 1, Math.max(0, Math.floor(y)));
    const before = copyPixels(pixels);
    if (floodFill(px, py, state.colour)) {
      state.undo.push(before); state.redo = []; updateHistoryButtons();
      render(); changed();
    }
    return;
  }
  // Capture keeps a stroke going when it leaves the canvas; a pointer that cannot be captured
  // (already released) still draws.
  try { canvas.setPointerCapture(event.pointerId); } catch (e) { /* draw without capture */ }
  checkpoint();
  state.drawing = true;
  state.last = [x, y];
  stamp(x, y, strokeColour());
  render(); changed();
});

canvas.addEventListener("pointermove", (event) => {
  if (!state.drawing) return;
  // Coalesced events keep fast strokes smooth where the browser merges pointer moves.
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) {
    const [x, y] = canvasPoint(e);
    strokeTo(state.last[0], state.last[1], x, y, strokeColour());
    state.last = [x, y];
  }
  render(); changed();
});

function endStroke() { state.drawing = false; state.last = null; }
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

// ---- opening, pasting and dropping images ----------------------------------------------------

async function openImage(blob) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch (e) {
    setStatus(`Cannot open that file as an image (${e.message || e}).`, true);
    return;
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * scale)), h = Math.max(1, Math.round(bitmap.height * scale));
  checkpoint();
  canvas.width = w; canvas.height = h;
  ctx.clearRect(0, 0, w, h);
  ctx.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  pixels = ctx.getImageData(0, 0, w, h);
  setStatus(`Opened a ${w}×${h} image${scale < 1 ? " (scaled down)" : ""}.`);
  changed();
}

$("upload").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) openImage(file);
  event.target.value = "";
});

document.addEventListener("paste", (event) => {
  const items = event.clipboardData ? [...event.clipboardData.items] : [];
  const item = items.find((i) => i.kind === "file" && i.type.startsWith("image/"));
  if (item) { event.preventDefault(); openImage(item.getAsFile()); }
});

const stage = $("stage");
stage.addEventListener("dragover", (event) => { event.preventDefault(); stage.classList.add("dragging"); });
stage.addEventListener("dragleave", () => stage.classList.remove("dragging"));
stage.addEventListener("drop", (event) => {
  event.preventDefault();
  stage.classList.remove("dragging");
  const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
  if (file) openImage(file);
});

// ---- tools, colours, models ------------------------------------------------------------------

function setTool(tool) {
  state.tool = tool;
  for (const b of document.querySelectorAll(".tool")) b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
}

function setSize(size) {
  state.size = Math.max(1, Math.min(64, size));
  $("size").value = String(state.size);
  $("size-value").textContent = String(state.size);
}

const hex = (rgb) => "#" + rgb.map((v) => v.toString(16).padStart(2, "0")).join("");

function setColour(rgb) {
  state.colour = rgb;
  for (const s of document.querySelectorAll(".swatch")) s.setAttribute("aria-selected", String(s.dataset.colour === hex(rgb)));
  $("custom-colour").value = hex(rgb);
  if (state.tool === "eraser") setTool("pen");
}

function buildPalette(colours) {
  const box = $("palette");
  for (const s of box.querySelectorAll(".swatch")) s.remove();
  const custom = $("custom-colour");
  colours.forEach((rgb, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "swatch";
    b.dataset.colour = hex(rgb);
    b.style.background = hex(rgb);
    b.title = `${hex(rgb)} (${rgb.join(", ")})`;
    b.setAttribute("role", "option");
    b.setAttribute("aria-label", `colour ${i + 1}: ${rgb.join(", ")}`);
    b.addEventListener("click", () => setColour(rgb));
    box.insertBefore(b, custom);
  });
}

function applyModel(model) {
  state.model = model;
  if (RUN === "browser") engine.want = model.name;
  const palette = model.palette && model.palette.length ? model.palette : null;
  // For a label map the most frequent colour is the background class; sketches start white.
  state.background = palette ? palette[0] : WHITE;
  buildPalette(palette || DEFAULT_COLOURS);
  setColour(palette ? (palette[1] || palette[0]) : [0, 0, 0]);
  $("model-info").textContent =
    `${model.generator} · ${model.image_size}px · ${model.direction}` + (palette ? ` · ${palette.length} label colours` : "");
  if (!state.touched) resetCanvas(model.image_size, model.image_size, state.background);
  // The answer in flight was for the previous model: drop it and ask again.
  if (net.controller) { net.controller.abort(); net.controller = null; }
  scheduleTranslate();
}

async function loadModels() {
  try {
    if (WEB) state.models = [WEB.config];
    else {
      const resp = await fetch("/api/models");
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      state.models = (await resp.json()).models;
    }
  } catch (e) {
    setStatus(`Cannot list the models: ${e.message || e}`, true);
    return;
  }
  const select = $("model");
  select.replaceChildren(...state.models.map((m) => new Option(m.name, m.name)));
  select.addEventListener("change", () => applyModel(state.models.find((m) => m.name === select.value)));
  applyModel(state.models[0]);
  document.body.dataset.ready = "1";
}

// ---- translation -----------------------------------------------------------------------------

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function scheduleTranslate() {
  net.dirty = true;
  document.body.dataset.busy = "1";  // until the output shows this canvas with this model
  if (!net.timer) net.timer = setTimeout(() => { net.timer = 0; pump(); }, DEBOUNCE_MS);
}

// The canvas as an uncompressed PNG (stored deflate blocks), built from `pixels` in about a
// millisecond: canvas.toBlob's compressing encoder took 15-20 ms for 128x128, more than the
// model's forward pass; on loopback the extra bytes cost nothing. Lossless, as the label maps need.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes, start, end) {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function storedPng(image) {
  const { width: w, height: h, data } = image, row = w * 4 + 1, raw = row * h;
  const blocks = Math.max(1, Math.ceil(raw / 65535));
  const idat = 2 + raw + 5 * blocks + 4;  // zlib header, data, block headers, adler32
  const out = new Uint8Array(8 + 25 + 12 + idat + 12);
  const view = new DataView(out.buffer);
  out.set([137, 80, 78, 71, 13, 10, 26, 10], 0);
  let p = 8;
  const chunk = (type, length, fill) => {
    view.setUint32(p, length);
    for (let i = 0; i < 4; i++) out[p + 4 + i] = type.charCodeAt(i);
    fill(p + 8);
    view.setUint32(p + 8 + length, crc32(out, p + 4, p + 8 + length));
    p += 12 + length;
  };
  chunk("IHDR", 13, (q) => { view.setUint32(q, w); view.setUint32(q + 4, h); out.set([8, 6, 0, 0, 0], q + 8); });
  chunk("IDAT", idat, (q) => {
    out[q++] = 0x78; out[q++] = 0x01;
    let a = 1, b = 0, left = raw, x = 0;  // x: position in the filtered stream (filter byte 0 per row)
    while (left > 0) {
      const n = Math.min(65535, left);
      left -= n;
      out[q++] = left ? 0 : 1; out[q++] = n & 0xff; out[q++] = n >>> 8; out[q++] = ~n & 0xff; out[q++] = (~n >>> 8) & 0xff;
      for (let k = 0; k < n; k++, x++) {
        const r = x % row, v = r === 0 ? 0 : data[((x / row) | 0) * w * 4 + r - 1];
        out[q++] = v;
        a += v; if (a >= 65521) a -= 65521;
        b += a; if (b >= 65521) b -= 65521;
      }
    }
    view.setUint32(q, ((b << 16) | a) >>> 0);
  });
  chunk("IEND", 0, () => {});
  return new Blob([out], { type: "image/png" });
}

function canvasBlob() {
  return Promise.resolve(storedPng(pixels));  // the request is the canvas as of now
}

async function pump() {
  if (net.controller) return;  // its answer will call pump again
  if (!net.dirty || !state.model) { delete document.body.dataset.busy; return; }
  if (RUN === "browser") return pumpBrowser();
  net.dirty = false;
  const controller = new AbortController();
  const seq = ++net.seq, version = state.version, model = state.model.name;
  net.controller = controller;
  document.body.dataset.busy = "1";
  const t0 = performance.now();
  try {
    const body = await canvasBlob();
    const tEncoded = performance.now();
    const resp = await fetch(`/api/translate?model=${encodeURIComponent(model)}`, {
      method: "POST", body, headers: { "Content-Type": "image/png" }, signal: controller.signal,
    });
    if (!resp.ok) {
      const err = await resp.json().catch(() => ({ detail: resp.statusText }));
      throw new Error(err.detail || `HTTP ${resp.status}`);
    }
    const image = await resp.blob();
    const ms = performance.now() - t0;
    if (!(await show(image, seq, version, model, controller.signal))) return;
    const entry = record(version, null, +resp.headers.get("X-Forward-Ms"));
    entry.encode_ms = tEncoded - t0;
    entry.round_trip_ms = ms;
    entry.server_ms = +((resp.headers.get("Server-Timing") || "").match(/total;dur=([\d.]+)/) || [0, 0])[1];
    const forward = resp.headers.get("X-Forward-Ms"), batch = resp.headers.get("X-Batch-Size");
    $("latency").textContent = `${Math.round(ms)} ms` + (forward ? ` (forward ${Math.round(+forward)} ms${batch > 1 ? `, batch ${batch}` : ""})` : "");
    setStatus("");
  } catch (e) {
    if (e.name !== "AbortError") setStatus(`Translation failed: ${e.message || e}`, true);
  } finally {
    if (net.controller === controller) net.controller = null;
    if (net.dirty) scheduleTranslate();
    else if (!net.controller) delete document.body.dataset.busy;
  }
}

// Decode the answer off-screen, then swap it in at once, unless it went stale meanwhile (aborted
// by a model switch, or older than what is shown). Returns whether it was shown.
async function show(image, seq, version, model, signal) {
  const url = URL.createObjectURL(image);
  const probe = new Image();
  probe.src = url;
  try { await probe.decode(); } catch (e) { /* an undecodable answer is reported by the img */ }
  if (signal.aborted || seq <= net.shownSeq) { URL.revokeObjectURL(url); return false; }
  output.src = url;
  if (net.url) URL.revokeObjectURL(net.url);
  net.url = url;
  net.shownSeq = seq;
  output.dataset.seq = String(seq);
  output.dataset.version = String(version);
  output.dataset.model = model;
  const link = $("download");
  link.href = url;
  link.download = `pix2pix-${model}.png`;
  link.setAttribute("aria-disabled", "false");
  return true;
}

// ---- in-browser translation: ONNX Runtime Web in a worker ------------------------------------

const FLAVOURS = {  // as pix2pix.web.runtime.FLAVOURS: the runtime bundle and the .wasm it needs
  wasm: ["ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm"],
  webgpu: ["ort.webgpu.bundle.min.mjs", "ort-wasm-simd-threaded.asyncify.wasm"],
};
// The folder of a page opened from disk, for the command that serves it.
const HERE = location.protocol === "file:" ? decodeURIComponent(location.pathname.replace(/\/[^/]*$/, "")) || "." : "DIR";
const FAST_PATH = `For the fast path, serve the folder: python -m http.server -d ${HERE} 8000, then open ` +
  "http://localhost:8000/ (the page isolates itself with its service worker), or host it with the headers " +
  "Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp.";
const engine = { worker: null, calls: new Map(), nextId: 0, runtime: null, loading: null, loaded: null,
                 flavour: "", ep: "", threads: 1, want: null };

// What the page shows for the shown output: stroke-to-output and the inference or forward time.
function record(version, inferenceMs, forwardMs) {
  const t = editTimes.get(version);
  const entry = { version, stroke_to_output_ms: t === undefined ? null : performance.now() - t,
                  inference_ms: inferenceMs, forward_ms: forwardMs, run: RUN };
  window.pix2pixStats.shown.push(entry);
  for (const v of [...editTimes.keys()]) if (v < version) editTimes.delete(v);
  return entry;
}

const scripts = new Map();
function loadScript(src) {
  // <script src> is the one way a page opened from file:// may read its own folder's files.
  if (!scripts.has(src)) {
    scripts.set(src, new Promise((resolve, reject) => {
      const el = document.createElement("script");
      el.src = src;
      el.onload = resolve;
      el.onerror = () => reject(new Error(`cannot load ${src}: is the exported folder complete?`));
      document.head.appendChild(el);
    }));
  }
  return scripts.get(src);
}

function fromBase64(b64) {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(b64);
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// The bytes of a runtime file or of a model: from the exported folder's script wrappers, or from
// the server (/runtime/NAME, /api/models/NAME/model.onnx).
async function fileBytes(name, modelName) {
  if (WEB) {
    const script = WEB.files[name];
    if (!script) throw new Error(`this export has no ${name}`);
    await loadScript(script);
    const b64 = (window.PIX2PIX_FILES || {})[name];
    if (typeof b64 !== "string") throw new Error(`${script} does not hold ${name}: re-export the folder`);
    const bytes = fromBase64(b64);
    delete window.PIX2PIX_FILES[name];  // the decoded copy is all that is kept
    return bytes.buffer;
  }
  const url = modelName ? `/api/models/${encodeURIComponent(modelName)}/model.onnx` : `/runtime/${name}`;
  const resp = await fetch(url);
  if (!resp.ok) {
    const err = await resp.json().catch(() => ({ detail: resp.statusText }));
    throw new Error(`${url}: ${err.detail || `HTTP ${resp.status}`}`);
  }
  return resp.arrayBuffer();
}

function call(msg, transfer = []) {
  return new Promise((resolve, reject) => {
    const id = ++engine.nextId;
    engine.calls.set(id, { resolve, reject });
    engine.worker.postMessage({ ...msg, id }, transfer);
  });
}

function startWorker() {
  const url = URL.createObjectURL(new Blob([`(${pix2pixWorker.toString()})();`], { type: "text/javascript" }));
  engine.worker = new Worker(url, { name: "pix2pix-translate" });
  engine.worker.onmessage = (event) => {
    const c = engine.calls.get(event.data.id);
    if (!c) return;
    engine.calls.delete(event.data.id);
    if (event.data.ok) c.resolve(event.data); else c.reject(new Error(event.data.error));
  };
  engine.worker.onerror = (event) => {
    const error = new Error(`the translation worker failed: ${event.message || "unknown error"}`);
    for (const c of engine.calls.values()) c.reject(error);
    engine.calls.clear();
  };
}

async function pickFlavour() {
  const offered = WEB ? FLAVOURS.webgpu.every((f) => f in WEB.files) : true;
  if (offered && navigator.gpu) {
    try { if (await navigator.gpu.requestAdapter()) return "webgpu"; } catch (e) { /* no adapter: WASM */ }
  }
  return "wasm";
}

function ensureRuntime() {
  if (!engine.runtime) {
    engine.runtime = (async () => {
      const flavour = await pickFlavour();
      // Threads need SharedArrayBuffer, which browsers give only to cross-origin isolated pages.
      const threads = self.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
      const [js, wasm] = FLAVOURS[flavour];
      const [source, bytes] = await Promise.all([fileBytes(js), fileBytes(wasm)]);
      startWorker();
      await call({ type: "runtime", source: new TextDecoder().decode(source), wasm: bytes, threads }, [bytes]);
      engine.flavour = flavour;
      engine.threads = threads;
    })();
  }
  return engine.runtime;
}

function ensureModel(model) {
  if (!engine.loading || engine.loading.name !== model.name) {
    const promise = (async () => {
      $("engine").textContent = `in browser: loading ${model.name}…`;
      await ensureRuntime();
      const bytes = await fileBytes(WEB ? "model.onnx" : null, WEB ? null : model.name);
      const providers = engine.flavour === "webgpu" ? ["webgpu", "wasm"] : ["wasm"];
      const r = await call({ type: "model", config: model, bytes, providers }, [bytes]);
      engine.loaded = model.name;
      engine.ep = r.ep;
      showEngine();
    })();
    engine.loading = { name: model.name, promise };
  }
  return engine.loading.promise;
}

function showEngine() {
  const threads = engine.ep === "wasm" ? `, ${engine.threads} thread${engine.threads > 1 ? "s" : ""}` : "";
  const el = $("engine");
  el.textContent = `in browser: ${engine.ep}${threads}`;
  el.dataset.ep = engine.ep;
  el.dataset.threads = String(engine.threads);
  const hint = $("run-hint");
  if (engine.ep === "wasm" && engine.threads === 1 && !self.crossOriginIsolated) {
    hint.textContent = "Running on one thread: browsers allow WebAssembly threads only on cross-origin isolated " +
      `pages${location.protocol === "file:" ? ", which a page opened from a file cannot be" : ""}. ` + FAST_PATH;
    hint.hidden = false;
  } else hint.hidden = true;
}

async function pumpBrowser() {
  net.dirty = false;
  const controller = new AbortController();
  const seq = ++net.seq, version = state.version, model = state.model;
  net.controller = controller;
  document.body.dataset.busy = "1";
  try {
    try { await ensureModel(model); } catch (e) {
      e.message = `Cannot run ${model.name} in this browser: ${e.message}`;
      $("engine").textContent = "in browser: no model";
      throw e;
    }
    if (controller.signal.aborted) return;
    const rgba = new Uint8ClampedArray(pixels.data);  // this version's pixels, moved to the worker
    const r = await call({ type: "run", rgba, width: pixels.width, height: pixels.height }, [rgba.buffer]);
    if (controller.signal.aborted || seq <= net.shownSeq) return;
    showPixels(r, seq, version, model.name);
    const entry = record(version, r.inference_ms, null);
    $("latency").textContent = `${Math.round(entry.stroke_to_output_ms ?? r.total_ms)} ms ` +
      `(inference ${Math.round(r.inference_ms)} ms)`;
    setStatus("");
  } catch (e) {
    if (e.name !== "AbortError") setStatus(e.message || String(e), true);
  } finally {
    if (net.controller === controller) net.controller = null;
    if (net.dirty && engine.loaded) scheduleTranslate();
    else if (!net.controller) delete document.body.dataset.busy;
  }
}

function showPixels(r, seq, version, model) {
  const c = $("output-canvas");
  if (c.width !== r.width || c.height !== r.height) { c.width = r.width; c.height = r.height; }
  c.getContext("2d").putImageData(new ImageData(r.rgba, r.width, r.height), 0, 0);
  c.hidden = false;
  net.shownSeq = seq;
  c.dataset.seq = String(seq);
  c.dataset.version = String(version);
  c.dataset.model = model;
  const link = $("download");
  link.download = `pix2pix-${model}.png`;
  link.setAttribute("aria-disabled", "false");
}

// In browser mode the output is a canvas: encode it as PNG only when asked to download it.
$("download").addEventListener("click", (event) => {
  if (RUN !== "browser" || event.target.dataset.encoded) return;
  event.preventDefault();
  $("output-canvas").toBlob((blob) => {
    const link = $("download");
    if (net.url) URL.revokeObjectURL(net.url);
    net.url = URL.createObjectURL(blob);
    link.href = net.url;
    link.dataset.encoded = "1";
    link.click();
    delete link.dataset.encoded;
  }, "image/png");
});

// An exported page served over plain HTTP (python -m http.server) gets cross-origin isolation,
// hence WASM threads, from its service worker, which adds the two headers; it reloads once for it.
async function isolate() {
  if (!WEB || self.crossOriginIsolated || !window.isSecureContext || !("serviceWorker" in navigator) ||
      location.protocol === "file:") return false;
  try {
    await navigator.serviceWorker.register("coi-sw.js");
    await navigator.serviceWorker.ready;
  } catch (e) { return false; }
  if (sessionStorage.getItem("pix2pix-isolate")) return false;  // tried once; the host forbids it
  sessionStorage.setItem("pix2pix-isolate", "1");
  location.reload();
  return true;
}

// ---- wiring ----------------------------------------------------------------------------------

for (const b of document.querySelectorAll(".tool")) b.addEventListener("click", () => setTool(b.dataset.tool));
$("size").addEventListener("input", (e) => setSize(Number(e.target.value)));
$("custom-colour").addEventListener("input", (e) => {
  const v = e.target.value;
  setColour([1, 3, 5].map((i) => parseInt(v.slice(i, i + 2), 16)));
});
$("undo").addEventListener("click", undo);
$("redo").addEventListener("click", redo);
$("clear").addEventListener("click", clearCanvas);

document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, select, textarea")) return;
  const key = event.key.toLowerCase(), mod = event.ctrlKey || event.metaKey;
  if (mod && key === "z") { event.preventDefault(); event.shiftKey ? redo() : undo(); }
  else if (mod && key === "y") { event.preventDefault(); redo(); }
  else if (mod) return;
  else if (key === "b" || key === "p") setTool("pen");
  else if (key === "e") setTool("eraser");
  else if (key === "f") setTool("fill");
  else if (key === "[") setSize(state.size - 1);
  else if (key === "]") setSize(state.size + 1);
});

const runSelect = $("run");
if (WEB) {
  for (const el of document.querySelectorAll("[data-served-only]")) el.hidden = true;
} else {
  runSelect.value = RUN;
  runSelect.addEventListener("change", () => {
    const url = new URL(location.href);
    if (runSelect.value === "browser") url.searchParams.set("run", "browser"); else url.searchParams.delete("run");
    location.href = url.href;
  });
}
document.body.dataset.run = RUN;
if (RUN === "browser") {
  output.hidden = true;
  $("engine").hidden = false;
}

setSize(state.size);
resetCanvas(canvas.width, canvas.height, WHITE);
isolate().then((reloading) => { if (!reloading) loadModels(); });
