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
const engine = { worker: null, calls: new Map(), nextId: 0, runtime: null, loading: null, loaded: null,
                 flavour: "", ep: "", threads: 1, want: null, stages: 1 };

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

// The model's bytes, as parts: its stages in order (pix2pix.export.stages) or the model whole.
async function modelParts(model) {
  if (!WEB) return [await fileBytes(null, model.name)];
  const script = WEB.files["model.onnx"];
  if (!script) throw new Error("this export has no model.onnx");
  await loadScript(script);
  const held = Object.keys(window.PIX2PIX_FILES || {});
  const names = held.includes("model.onnx") ? ["model.onnx"]
    : held.filter((n) => n.startsWith("model.onnx#")).sort((a, b) => +a.split("#")[1] - +b.split("#")[1]);
  if (!names.length) throw new Error(`${script} does not hold the model: re-export the folder`);
  return names.map((name) => {
    const bytes = fromBase64(window.PIX2PIX_FILES[name]);
    delete window.PIX2PIX_FILES[name];  // the decoded copy is all that is kept
    return bytes.buffer;
  });
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
      const threads = self.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
      const [js, wasm] = flavours()[flavour];
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
      const parts = await modelParts(model);
      const providers = engine.flavour === "webgpu" ? ["webgpu", "wasm"] : ["wasm"];
      const r = await call({ type: "model", config: model, parts, providers }, parts);
      engine.loaded = model.name;
      engine.ep = r.ep;
      engine.stages = r.stages;
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

// `preempt`: this edit ends a stroke (or is one, as a fill or an undo) while a run for an older
// canvas is in flight: the worker drops that run at its next stage and takes this one, so the
// output follows the pen-up after one run, not after the rest of a stale one plus one.
async function pumpBrowser(preempt = false) {
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
    const t0 = performance.now();
    const rgba = new Uint8ClampedArray(pixels.data);  // this version's pixels, moved to the worker
    window.pix2pixStats.runs += 1;
    const r = await call({ type: "run", rgba, width: pixels.width, height: pixels.height, preempt }, [rgba.buffer]);
    const back = performance.now();
    if (r.preempted) window.pix2pixStats.preempted += 1;
    if (r.preempted || controller.signal.aborted || seq <= net.shownSeq) return;
    putOutput(new ImageData(r.rgba, r.width, r.height), seq, version, model.name);  // studio.js
    // Where the milliseconds went: the worker's times are absolute (timeOrigin-based).
    const [w0, w1, w2, w3] = r.times.map((t) => t - performance.timeOrigin);
    const entry = record(version, r.inference_ms, null, {
      wait: t0 - (editTimes.get(version) ?? t0), to_worker: w0 - t0, prepare: w1 - w0, inference: w2 - w1,
      finish: w3 - w2, from_worker: back - w3, draw: performance.now() - back });
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
  info: () => ({ ep: engine.ep, threads: engine.threads, flavour: engine.flavour, isolated: self.crossOriginIsolated,
                 stages: engine.stages }),
  bench: async (size, runs) => (await call({ type: "bench", size, runs })).ms,
  // Each run's ms per stage (pix2pix.export.stages), timed around each session.run.
  benchStages: async (size, runs) => (await call({ type: "bench", size, runs, stages: true })).stage_ms,
  profile: async (size, runs) => { await call({ type: "profile", size, runs }); },  // events go to the console
};
