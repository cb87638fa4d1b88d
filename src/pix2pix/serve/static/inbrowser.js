// pix2pix studio, in-browser mode: ONNX Runtime Web in a Web Worker (worker.js), fed from an
// exported folder's script wrappers or from the server. Loaded before studio.js, whose globals
// (state, net, pixels, $, ...) it uses when called; pumpBrowser is the in-browser twin of pump.
"use strict";

// Per runtime flavour, the bundle and the .wasm it needs: written into an export's config.json,
// sent by the server with /api/models (state.runtime); Python's web_runtime.FLAVOURS is their home.
const flavours = () => (WEB ? WEB.config : state.runtime || {}).flavours || {};
// The folder of a page opened from disk, for the command that serves it.
const HERE = location.protocol === "file:" ? decodeURIComponent(location.pathname.replace(/\/[^/]*$/, "")) || "." : "DIR";
const FAST_PATH = `For the fast path, serve the folder: python -m http.server -d ${HERE} 8000, then open ` +
  "http://localhost:8000/ (the page isolates itself with its service worker), or host it with the headers " +
  "Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp.";
// `pool`: the translation workers, each {worker, calls, runs (in flight), seq (its latest run's),
// used (when it last took one)}; pool[0] loads first, a second one may join it (growPool).
const engine = { pool: [], pending: 0, nextId: 0, runtime: null, runtimeCopy: null, loading: null, loaded: null,
                 flavour: "", ep: "", threads: 1, want: null, stages: 1, whole: false, growing: Promise.resolve() };
const PARAMS = new URLSearchParams(location.search);
// Runs in flight while the pen is down (?pen_runs=2: both workers of the pool; see pumpBrowserBusy).
const PEN_RUNS = Math.max(1, Math.floor(Number(PARAMS.get("pen_runs")) || 1));

// How many workers translate: two where each session gets one WASM thread (a page that is not
// cross-origin isolated, file:// included) and the browser has a second core, which one worker
// leaves idle: a stroke's end then goes to a free worker at once instead of waiting for a stale
// run's stage (pumpBrowserBusy keeps one free while the pen is down). ?workers=1|2 chooses. An
// exported page only (one model; the served studio switches models), WASM only (WebGPU is one device).
// The largest model (bytes of its ONNX weights) a pool, or a worker's whole graph, takes a second copy of.
const POOL_MAX_MODEL_BYTES = 64 * 1024 * 1024;
function poolSize() {
  if (!WEB || engine.flavour !== "wasm") return 1;
  const asked = Number(PARAMS.get("workers"));
  if (asked >= 1) return Math.min(2, Math.floor(asked));
  return engine.threads === 1 && (navigator.hardwareConcurrency || 1) >= 2 ? 2 : 1;
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

// The model's bytes, { parts, whole }. parts: its stages in order (pix2pix.export.stages) or the
// model whole, each { model, half }: the ONNX file, and its weights as float16
// (pix2pix.export.half_storage: the worker widens them to float32) or null where the file holds
// them. whole: for staged float16 weights, the stages joined into one graph over the same weights
// (pix2pix.export.web.WHOLE), which the worker runs where no newer edit will preempt; or null.
const WHOLE = "model.whole.onnx";
async function modelFiles(model) {
  if (!WEB) return { parts: [{ model: await fileBytes(null, model.name), half: null }], whole: null };
  const script = WEB.files["model.onnx"];
  if (!script) throw new Error("this export has no model.onnx");
  await loadScript(script);
  const held = Object.keys(window.PIX2PIX_FILES || {});
  const names = held.includes("model.onnx") ? ["model.onnx"]
    : held.filter((n) => n.startsWith("model.onnx#")).sort((a, b) => +a.split("#")[1] - +b.split("#")[1]);
  if (!names.length) throw new Error(`${script} does not hold the model: re-export the folder`);
  const take = (name) => {
    if (!(name in window.PIX2PIX_FILES)) return null;
    const bytes = fromBase64(window.PIX2PIX_FILES[name]);
    delete window.PIX2PIX_FILES[name];  // the decoded copy is all that is kept
    return bytes.buffer;
  };
  const parts = names.map((name) => ({ model: take(name), half: take(name.replace("model.onnx", "weights.fp16")) }));
  return { parts, whole: names.length > 1 ? take(WHOLE) : null };
}

// The buffers of `files` (modelFiles), to move them to a worker; and a copy of them.
const fileBuffers = (files) => [...files.parts.flatMap((p) => (p.half ? [p.model, p.half] : [p.model])),
                                ...(files.whole ? [files.whole] : [])];
const copyFiles = (files) => ({ parts: files.parts.map((p) => ({ model: p.model.slice(0), half: p.half && p.half.slice(0) })),
                                whole: files.whole && files.whole.slice(0) });

function call(msg, transfer = [], slot = engine.pool[0]) {
  return new Promise((resolve, reject) => {
    const id = ++engine.nextId;
    slot.calls.set(id, { resolve, reject });
    slot.worker.postMessage({ ...msg, id }, transfer);
  });
}

// A new translation worker (a pool slot), not yet holding the runtime.
function startWorker() {
  const url = URL.createObjectURL(new Blob([`(${pix2pixWorker.toString()})();`], { type: "text/javascript" }));
  const slot = { worker: new Worker(url, { name: "pix2pix-translate" }), calls: new Map(), runs: 0, seq: 0, used: 0 };
  slot.worker.onmessage = (event) => {
    const c = slot.calls.get(event.data.id);
    if (!c) return;
    slot.calls.delete(event.data.id);
    if (event.data.ok) c.resolve(event.data); else c.reject(new Error(event.data.error));
  };
  slot.worker.onerror = (event) => {
    const error = new Error(`the translation worker failed: ${event.message || "unknown error"}`);
    for (const c of slot.calls.values()) c.reject(error);
    slot.calls.clear();
  };
  return slot;
}

// Tell a worker that every run it was sent before now is stale: it drops the one in progress at
// its next stage boundary (freeing its core) and those queued behind it.
function dropStale(slot) {
  slot.worker.postMessage({ type: "preempt", id: ++engine.nextId });
}

// The pool's second worker, loaded in the background once the first one translates (the first
// output does not wait for it); any failure leaves the page on one worker, silently.
function growPool(model, files) {
  if (poolSize() < 2 || engine.pool.length > 1 || !engine.runtimeCopy) return;
  engine.growing = (async () => {
    const slot = startWorker();
    try {
      const { source, wasm } = engine.runtimeCopy;
      await call({ type: "runtime", source, wasm, threads: engine.threads }, [wasm], slot);
      await call({ type: "model", config: model, ...files, providers: [engine.ep] }, fileBuffers(files), slot);
      if (engine.loaded !== model.name) throw new Error("the model changed meanwhile");
      engine.pool.push(slot);
      showEngine();
    } catch (e) {
      slot.worker.terminate();
      console.info(`pix2pix: translating on one worker (the second did not load: ${e.message || e})`);
    } finally {
      engine.runtimeCopy = null;
    }
  })();
}

async function pickFlavour() {
  const webgpu = flavours().webgpu;
  const offered = webgpu && (WEB ? webgpu.every((f) => f in WEB.files) : true);
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
      let threads = self.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
      const [js, wasm] = flavours()[flavour];
      const asked = Number(PARAMS.get("threads"));  // ?threads=N: fewer (benchmarks/browser.py --pool-ab)
      if (asked >= 1) threads = Math.min(threads, Math.floor(asked));
      const [source, bytes] = await Promise.all([fileBytes(js), fileBytes(wasm)]);
      engine.flavour = flavour;
      engine.threads = threads;
      const text = new TextDecoder().decode(source);
      // A copy for the pool's second worker (the first one's bytes are moved to it).
      if (poolSize() > 1) engine.runtimeCopy = { source: text, wasm: bytes.slice(0) };
      engine.pool = [startWorker()];
      await call({ type: "runtime", source: text, wasm: bytes, threads }, [bytes]);
    })();
  }
  return engine.runtime;
}

function ensureModel(model) {
  if (!engine.loading || engine.loading.name !== model.name) {
    const promise = (async () => {
      $("engine").textContent = `in browser: loading ${model.name}…`;
      await ensureRuntime();
      const files = await modelFiles(model);
      const providers = engine.flavour === "webgpu" ? ["webgpu", "wasm"] : ["wasm"];
      // A second copy of the model for growPool, or for the whole graph, unless the model is big:
      // two sessions hold two copies of the weights and their buffers, which a large model cannot
      // afford on a phone.
      const bytes = fileBuffers(files).reduce((n, b) => n + b.byteLength, 0);
      if (bytes > POOL_MAX_MODEL_BYTES) { engine.runtimeCopy = null; files.whole = null; }
      const spare = engine.runtimeCopy ? copyFiles(files) : null;  // for growPool
      const r = await call({ type: "model", config: model, ...files, providers }, fileBuffers(files));
      engine.loaded = model.name;
      engine.ep = r.ep;
      engine.stages = r.stages;
      engine.whole = r.whole;
      showEngine();
      if (spare) growPool(model, spare);
    })();
    engine.loading = { name: model.name, promise };
  }
  return engine.loading.promise;
}

function showEngine() {
  const threads = engine.ep === "wasm" ? `, ${engine.threads} thread${engine.threads > 1 ? "s" : ""}` : "";
  const el = $("engine");
  const workers = engine.pool.length > 1 ? ` × ${engine.pool.length} workers` : "";
  el.textContent = `in browser: ${engine.ep}${threads}${workers}`;
  el.dataset.ep = engine.ep;
  el.dataset.threads = String(engine.threads);
  el.dataset.workers = String(engine.pool.length);
  const hint = $("run-hint");
  if (engine.ep === "wasm" && engine.threads === 1 && !self.crossOriginIsolated) {
    hint.textContent = "Running on one thread: browsers allow WebAssembly threads only on cross-origin isolated " +
      `pages${location.protocol === "file:" ? ", which a page opened from a file cannot be" : ""}. ` + FAST_PATH;
    hint.hidden = false;
  } else hint.hidden = true;
}

// `preempt`: this edit ends a stroke (or is one, as a fill or an undo) while a run for an older
// canvas is in flight: the worker drops that run at its next stage and takes this one, so the
// output follows the pen-up after one run, not after the rest of a stale one plus one. With a pool
// of two workers the edit goes to a free one at once, and the busy one drops its stale run all the
// same (its core is then free).
async function pumpBrowser(preempt = false) {
  net.dirty = false;
  const controller = new AbortController();
  const seq = ++net.seq, version = state.version, model = state.model;
  net.controller = controller;
  document.body.dataset.busy = "1";
  let slot = null, pending = true;
  engine.pending += 1;  // until it has a worker: pumpBrowserBusy starts no other run meanwhile
  try {
    try { await ensureModel(model); } catch (e) {
      e.message = `Cannot run ${model.name} in this browser: ${e.message}`;
      $("engine").textContent = "in browser: no model";
      throw e;
    }
    if (controller.signal.aborted) return;
    slot = pickSlot();
    engine.pending -= 1;
    pending = false;
    if (preempt) for (const other of engine.pool) if (other !== slot && other.runs) dropStale(other);
    slot.runs += 1;
    slot.seq = seq;
    slot.used = ++engine.nextId;
    const busy = engine.pool.filter((s) => s.runs).length, stats = window.pix2pixStats;
    stats.most_busy_workers = Math.max(stats.most_busy_workers || 0, busy);
    const t0 = performance.now();
    const rgba = new Uint8ClampedArray(pixels.data);  // this version's pixels, moved to the worker
    window.pix2pixStats.runs += 1;
    // staged: made while the pen is down, so a newer edit may preempt it between stages.
    const r = await call({ type: "run", rgba, width: pixels.width, height: pixels.height, preempt,
                          staged: !!state.drawing }, [rgba.buffer], slot);
    const back = performance.now();
    if (r.preempted) window.pix2pixStats.preempted += 1;
    if (r.preempted || controller.signal.aborted || seq <= net.shownSeq) return;
    putOutput(new ImageData(r.rgba, r.width, r.height), seq, version, model.name);  // studio.js
    // Runs older than this output would never be shown: free their workers.
    for (const other of engine.pool) if (other !== slot && other.runs && other.seq < seq) dropStale(other);
    // Where the milliseconds went: the worker's times are absolute (timeOrigin-based).
    const [w0, w1, w2, w3] = r.times.map((t) => t - performance.timeOrigin);
    const entry = record(version, r.inference_ms, null, {
      wait: t0 - (editTimes.get(version) ?? t0), to_worker: w0 - t0, prepare: w1 - w0, inference: w2 - w1,
      finish: w3 - w2, from_worker: back - w3, draw: performance.now() - back });
    entry.worker = engine.pool.indexOf(slot);  // which worker of the pool translated it
    $("latency").textContent = `${Math.round(entry.stroke_to_output_ms ?? r.total_ms)} ms ` +
      `(inference ${Math.round(r.inference_ms)} ms)`;
    setStatus("");
  } catch (e) {
    if (e.name !== "AbortError") setStatus(e.message || String(e), true);
  } finally {
    if (pending) engine.pending -= 1;
    if (slot) slot.runs -= 1;
    if (net.controller === controller) net.controller = null;
    if (net.dirty && engine.loaded) scheduleTranslate();
    else if (!net.controller) delete document.body.dataset.busy;
  }
}

// The worker a new run goes to: a free one (the one free longest, so a pool's workers take turns),
// else the one whose latest run is oldest (it queues there, or preempts it).
function pickSlot() {
  const free = engine.pool.filter((s) => !s.runs);
  const pick = (slots, key) => slots.reduce((a, b) => (key(b) < key(a) ? b : a));
  return free.length ? pick(free, (s) => s.used) : pick(engine.pool, (s) => s.seq);
}

// An edit made while a run is in flight (studio.js pump): a free worker of the pool takes it at
// once (and, at a stroke's end, the stale runs are dropped); with none free, a stroke's end
// preempts the stale run; otherwise it waits for a run to end. While the pen is down at most
// PEN_RUNS workers translate: the others stay free for the stroke's end, which then never waits
// for a stale run's stage (with both busy at pen-up it would: measured, benchmarks/browser.py
// --pool-ab).
function pumpBrowserBusy() {
  const busy = engine.pool.filter((s) => s.runs).length;
  const ready = engine.loaded === (state.model && state.model.name) && !engine.pending;
  if (ready && busy < engine.pool.length && (!state.drawing || busy < PEN_RUNS)) pumpBrowser(mayPreempt());
  else if (mayPreempt()) pumpBrowser(true);
}

// Whether an edit made now may preempt the run in flight (see pumpBrowser): not while the pen is
// down (each run would be dropped for the next move, and the output would stand still).
function mayPreempt() {
  return RUN === "browser" && !state.drawing && engine.stages > 1 && engine.loaded === (state.model && state.model.name);
}

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

// For benchmarks/browser.py and the profile: the loaded engine timed without the page around it.
window.pix2pixEngine = {
  // workers: the pool's size now; running: runs in flight on them.
  info: () => ({ ep: engine.ep, threads: engine.threads, flavour: engine.flavour, isolated: self.crossOriginIsolated,
                 stages: engine.stages, whole: engine.whole, workers: engine.pool.length,
                 running: engine.pool.reduce((n, s) => n + s.runs, 0) }),
  // The pool's size once its second worker has loaded (or failed to).
  ready: () => engine.growing.then(() => engine.pool.length),
  // The first worker's session alone, once the pool is done loading (which would share the cores).
  bench: async (size, runs) => { await engine.growing; return (await call({ type: "bench", size, runs })).ms; },
  // Each run's ms per stage (pix2pix.export.stages), timed around each session.run.
  benchStages: async (size, runs) => {
    await engine.growing;
    return (await call({ type: "bench", size, runs, stages: true })).stage_ms;
  },
  profile: async (size, runs) => { await call({ type: "profile", size, runs }); },  // events go to the console
};
