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
// On the server, edits go over one WebSocket (/api/live) when the server offers it: each edit is
// sent as it happens, as raw RGBA, the server keeps only the latest one and answers it when the
// model is free, so the output follows one forward pass behind the pen. The answers come back as
// raw RGBA too and are put on the output canvas: no PNG to decode (?live=png: PNG both ways, into
// the <img>, as over HTTP).
// Without the socket (or with ?transport=http) each edit is one POST /api/translate.
//
// Video mode (video.js) feeds camera or clip frames through the same path, one canvas version
// per frame; on the server they go as "frame" messages and come back onto the output canvas.
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
  models: [], model: null, runtime: null, tool: "pen", size: 6, colour: [0, 0, 0], background: WHITE,
  undo: [], redo: [], version: 0, touched: false, drawing: false, last: null,
  base: null,  // the opened photo or example: what the eraser brings back (picker.js)
};
const net = { controller: null, dirty: false, timer: 0, seq: 0, shownSeq: 0, url: null };
// The /api/live socket: edits sent and not yet answered (seq -> {version, model, t0}), and the
// first seq whose answer may still be shown (a model switch drops the answers before it).
const LIVE_RETRY_MS = 4;  // while the socket still sends the previous edit
// Video frames (video.js) wait while this many are unanswered: a frame's latency stays about two
// frames' work whatever the camera's rate. Still edits have no cap (see pumpLive).
const LIVE_AHEAD = 2;
const live = { ws: null, sent: new Map(), minSeq: 0 };
const LIVE_RAW = new URLSearchParams(location.search).get("live") !== "png";
const WEB = window.PIX2PIX_WEB || null;  // an exported page: its config and file map
const RUN = WEB || new URLSearchParams(location.search).get("run") === "browser" ? "browser" : "server";
// performance.now() of each canvas version's edit, and what each shown output cost: read by the
// latency tests and benchmarks/browser.py (stroke-to-output as the page itself measures it).
const editTimes = new Map();
// runs: translations started in the browser; preempted: those dropped for a newer edit;
// most_busy_workers: the most workers of the pool translating at once (inbrowser.js).
window.pix2pixStats = { run: RUN, shown: [], transport: "http", runs: 0, preempted: 0, most_busy_workers: 0 };
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

// A filled disc of the brush size at (cx, cy) in canvas pixels, hard-edged. `rgb` null: the
// eraser over a photo, which brings back the photo's own pixels.
function stamp(cx, cy, rgb) {
  const r = Math.max(0.75, state.size / 2), w = pixels.width, h = pixels.height, d = pixels.data;
  const base = rgb === null ? state.base.data : null;
  const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(w - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(h - 1, Math.ceil(cy + r));
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      if (dx * dx + dy * dy <= r * r) {
        const i = (y * w + x) * 4;
        if (base) { d[i] = base[i]; d[i + 1] = base[i + 1]; d[i + 2] = base[i + 2]; d[i + 3] = base[i + 3]; }
        else { d[i] = rgb[0]; d[i + 1] = rgb[1]; d[i + 2] = rgb[2]; d[i + 3] = 255; }
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
  state.base = null;
  resetCanvas(canvas.width, canvas.height, state.background);
  changed();
}

// ---- pointer input (mouse, pen and touch alike) ----------------------------------------------

function canvasPoint(event) {
  const rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * (canvas.width / rect.width),
          (event.clientY - rect.top) * (canvas.height / rect.height)];
}

function strokeColour() {
  if (state.tool !== "eraser") return state.colour;
  const b = state.base;  // over a photo the eraser restores it; elsewhere it paints the background
  return b && b.width === pixels.width && b.height === pixels.height ? null : state.background;
}

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

function endStroke() {
  state.drawing = false; state.last = null;
  // The stroke's last edit may now preempt a stale run: at once, not a timer task later.
  if (net.dirty) {
    clearTimeout(net.timer);
    net.timer = 0;
    pump();
  }
}
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
  useImage(ctx.getImageData(0, 0, w, h));  // picker.js: the eraser's base, the photo's colours
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
  const fresh = !state.touched;
  if (fresh) { resetCanvas(model.image_size, model.image_size, state.background); state.base = null; }
  // The answer in flight was for the previous model: drop it and ask again.
  if (net.controller) { net.controller.abort(); net.controller = null; }
  live.minSeq = net.seq + 1;
  live.sent.clear();
  // An untouched canvas opens on the model's first example (picker.js); else the canvas as it is.
  document.body.dataset.busy = "1";
  showExamples(model, fresh).then((opened) => { if (!opened && state.model === model) scheduleTranslate(); });
}

async function loadModels() {
  try {
    if (!WEB && RUN === "server") await connectLive();
    if (WEB) state.models = [WEB.config];
    else {
      const resp = await fetch("/api/models");
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const listed = await resp.json();
      state.models = listed.models;
      state.runtime = { onnxruntime_web: listed.onnxruntime_web, flavours: listed.flavours };
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

function canvasBlob() {
  return Promise.resolve(storedPng(pixels));  // the request is the canvas as of now
}

async function pump() {
  if (net.controller) {  // its answer will call pump again
    // inbrowser.js: a free worker of the pool takes the edit, or a stroke's end drops a stale run
    if (net.dirty && RUN === "browser") pumpBrowserBusy();
    return;
  }
  if (!net.dirty || !state.model) {
    if (!live.sent.size) delete document.body.dataset.busy;
    return;
  }
  if (RUN === "browser") return pumpBrowser();
  if (live.ws) return pumpLive();
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
    entry.transport = "http";
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

// ---- the live socket ---------------------------------------------------------------------------

// Open /api/live; resolves true once open, false when the server has no socket (then: REST).
function connectLive() {
  if (new URLSearchParams(location.search).get("transport") === "http" || !("WebSocket" in window)) {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/api/live`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      live.ws = ws;
      window.pix2pixStats.transport = "websocket";
      resolve(true);
    };
    ws.onmessage = (event) => onLiveMessage(event.data);
    ws.onclose = () => {
      const wasOpen = live.ws === ws;
      live.ws = null;
      window.pix2pixStats.transport = "http";
      resolve(false);
      if (wasOpen) {  // the edits in flight are lost: send the canvas again, over HTTP
        live.sent.clear();
        scheduleTranslate();
      }
    };
  });
}

function pumpLive() {
  // Every edit goes as soon as the socket has sent the previous one: the server keeps only the
  // latest, so when it is free it takes the newest edit there is (a cap on edits in flight made
  // the stroke's last edit wait for a stale one's forward pass). On a slow network the socket's
  // buffer is the brake: edits made meanwhile coalesce here into the next message.
  if (live.ws.bufferedAmount > 0) {
    if (!net.timer) net.timer = setTimeout(() => { net.timer = 0; pump(); }, LIVE_RETRY_MS);
    return;
  }
  net.dirty = false;
  const seq = ++net.seq, version = state.version, model = state.model.name, t0 = performance.now();
  // The canvas as it is, raw RGBA after the JSON line: no PNG to build here nor to decode there
  // (?live=png: the PNG messages, kept for comparison by benchmarks/serve.py).
  const type = isVideoFrame(version) ? "frame" : "edit";  // video.js: counted apart by the server
  const head = { seq, model, type };
  // Raw both ways: the answer comes back as RGBA too, put on the output canvas with no PNG to
  // decode here (nor to encode on the server).
  if (LIVE_RAW) Object.assign(head, { rgba: [pixels.width, pixels.height], reply: "rgba" });
  const header = new TextEncoder().encode(JSON.stringify(head) + "\n");
  const body = LIVE_RAW ? pixels.data : storedPngBytes(pixels);
  const message = new Uint8Array(header.length + body.length);  // not a Blob: that is read async
  message.set(header);
  message.set(body, header.length);
  live.ws.send(message);
  live.sent.set(seq, { version, model, t0, sent: performance.now() });
  document.body.dataset.busy = "1";
}

async function onLiveMessage(data) {
  const arrived = performance.now();
  let head, image = null;
  if (typeof data === "string") head = JSON.parse(data);  // an error, in the REST API's shape
  else {
    const bytes = new Uint8Array(data), nl = bytes.indexOf(10);
    head = JSON.parse(new TextDecoder().decode(bytes.subarray(0, nl)));
    image = answerImage(head, data, nl + 1);
  }
  const sent = live.sent.get(head.seq);
  for (const seq of [...live.sent.keys()]) if (seq <= head.seq) live.sent.delete(seq);  // answered or dropped
  try {
    if (!sent || head.seq < live.minSeq) return;  // for a model no longer chosen
    if (!image) { setStatus(`Translation failed: ${head.detail || head.error}`, true); return; }
    const ms = arrived - sent.t0;
    if (!(await show(image, head.seq, sent.version, head.model, { aborted: head.seq < live.minSeq }))) return;
    const server = head.timing || {};
    const steps = { wait: sent.t0 - (editTimes.get(sent.version) ?? sent.t0), encode: sent.sent - sent.t0,
                    network: Math.max(0, arrived - sent.sent - head.server_ms), server_wait: server.wait,
                    decode: server.decode, queue: server.queue, forward: server.forward,
                    server_encode: server.encode, show: performance.now() - arrived };
    const entry = record(sent.version, null, head.forward_ms, steps);
    entry.round_trip_ms = ms;
    entry.server_ms = head.server_ms;
    entry.transport = "websocket";
    $("latency").textContent = `${Math.round(entry.stroke_to_output_ms ?? ms)} ms` +
      ` (forward ${Math.round(head.forward_ms)} ms${head.batch_size > 1 ? `, batch ${head.batch_size}` : ""})`;
    setStatus("");
  } finally {
    if (net.dirty) scheduleTranslate();
    else if (!live.sent.size && !net.controller) delete document.body.dataset.busy;
  }
}

// The image of a live answer, from byte `start` of the message: raw RGBA (asked with "reply":
// "rgba") as ImageData over the message's own bytes (no copy), else a PNG Blob.
function answerImage(head, buffer, start) {
  if (!head.rgba) return new Blob([new Uint8Array(buffer, start)], { type: "image/png" });
  const [w, h] = head.rgba;
  return new ImageData(new Uint8ClampedArray(buffer, start, w * h * 4), w, h);
}

// Show a served answer, unless it went stale meanwhile (aborted by a model switch, or older than
// what is shown). Raw answers and video frames go on the output canvas; a PNG edit is
// decoded off-screen, then swapped into the <img> at once. Returns whether it was shown.
async function show(image, seq, version, model, signal) {
  if (image instanceof ImageData || isVideoFrame(version)) return showOnCanvas(image, seq, version, model, signal);
  const url = URL.createObjectURL(image);
  const probe = new Image();
  probe.src = url;
  try { await probe.decode(); } catch (e) { /* an undecodable answer is reported by the img */ }
  if (signal.aborted || seq <= net.shownSeq) { URL.revokeObjectURL(url); return false; }
  output.src = url;
  output.hidden = false;
  $("output-canvas").hidden = true;  // where raw answers and the video's frames were shown
  if (net.url) URL.revokeObjectURL(net.url);
  net.url = url;
  markShown(output, seq, version, model);
  $("download").href = url;
  return true;
}

// A served answer on the output canvas, where the video blend and the recorder reach its pixels:
// raw RGBA as it is, a PNG (a video frame over HTTP or with ?live=png) decoded first.
async function showOnCanvas(image, seq, version, model, signal) {
  const raw = image instanceof ImageData;
  let bitmap = null;
  if (!raw) { try { bitmap = await createImageBitmap(image); } catch (e) { return false; } }
  if (signal.aborted || seq <= net.shownSeq) { if (bitmap) bitmap.close(); return false; }
  if (raw) putOutput(image, seq, version, model);
  else { drawOutput(bitmap, seq, version, model); bitmap.close(); }
  return true;
}

// The output canvas sized w x h, and its 2D context. Always asked for the same way, since the
// first getContext call fixes the options: the blend of decoded frames reads the pixels back.
function outputContext(w, h) {
  const c = $("output-canvas");
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  return c.getContext("2d", { willReadFrequently: true });
}

// Pixels (ImageData: a raw answer, or the browser engine's) onto the output canvas, shown. The
// one way both engines draw an output; a video frame is blended first (video.js).
function putOutput(image, seq, version, model) {
  videoOutput(image.data, version);
  outputContext(image.width, image.height).putImageData(image, 0, 0);
  outputShown(seq, version, model);
}

// A decoded PNG answer onto the output canvas, shown; blended through its pixels read back.
function drawOutput(bitmap, seq, version, model) {
  const cx = outputContext(bitmap.width, bitmap.height);
  cx.drawImage(bitmap, 0, 0);
  if (video.blend) {
    const d = cx.getImageData(0, 0, bitmap.width, bitmap.height);
    videoOutput(d.data, version);
    cx.putImageData(d, 0, 0);
  }
  outputShown(seq, version, model);
}

// The output canvas is now what the page shows: the bookkeeping and, for a video frame, its stats.
function outputShown(seq, version, model) {
  const c = $("output-canvas");
  c.hidden = false;
  output.hidden = true;
  markShown(c, seq, version, model);
  videoShown(version);  // video.js: fps, latency, the recording's frame
}

// ---- what each shown output cost ---------------------------------------------------------------

// What the page shows for the shown output: stroke-to-output and the inference or forward time.
// `steps`: where the stroke-to-output milliseconds went, in order (name -> ms; they add up to it,
// up to rounding): read by benchmarks/browser.py and benchmarks/serve.py beside the totals.
function record(version, inferenceMs, forwardMs, steps = null) {
  const t = editTimes.get(version);
  const entry = { version, stroke_to_output_ms: t === undefined ? null : performance.now() - t,
                  inference_ms: inferenceMs, forward_ms: forwardMs, run: RUN, steps };
  window.pix2pixStats.shown.push(entry);
  for (const v of [...editTimes.keys()]) if (v < version) editTimes.delete(v);
  return entry;
}

// ---- wiring ----------------------------------------------------------------------------------

// In browser mode (and for the server's raw answers and video frames) the output is a canvas:
// encode it as PNG only when asked to download it.
$("download").addEventListener("click", (event) => {
  if ($("output-canvas").hidden || event.target.dataset.encoded) return;
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
wireVideo();  // video.js: camera or clip, frame by frame, by either engine
if (RUN === "browser") {
  output.hidden = true;
  $("engine").hidden = false;
}

setSize(state.size);
resetCanvas(canvas.width, canvas.height, WHITE);
isolate().then((reloading) => { if (!reloading) loadModels(); });

// One bookkeeping for a shown output, whichever engine made it (server answer or in-browser run):
// what the tests and the coalescing rule read (seq, version, model) and the download link.
function markShown(el, seq, version, model) {
  net.shownSeq = seq;
  el.dataset.seq = String(seq);
  el.dataset.version = String(version);
  el.dataset.model = model;
  const link = $("download");
  link.download = `pix2pix-${model}.png`;
  link.setAttribute("aria-disabled", "false");
}
