// pix2pix studio, in-browser mode: the translation worker (ONNX Runtime Web).
//
// A classic script that only defines a function: the studio turns its source into a blob: Worker,
// which is the one way to start a worker from a page opened from file:// (browsers refuse a
// file:// worker URL). Every input reaches it by message: the runtime's source text and .wasm
// bytes, the model bytes, then canvases to translate, so it never loads anything itself.
"use strict";

function pix2pixWorker() {
  const LUMA = [0.299, 0.587, 0.114];  // as pix2pix.util.imageio.LUMA: gray inputs match the server's
  let ort = null, ep = null, model = null, modelParts = null, whole = null;

  function fail(text) { throw new Error(text); }

  // A part's float16 weights -> the float32 bytes its ONNX file names as external data in
  // HALF_WEIGHTS (as pix2pix.export.half_storage.WEIGHTS). Every float16 value is exact in float32.
  const HALF_WEIGHTS = "weights.bin";
  const PART_WEIGHTS = (k) => `weights${k}.bin`;  // as half_storage.PART_WEIGHTS: stage k's, in the whole graph
  let halfTable = null;
  function widen(half) {
    if (!halfTable) {
      halfTable = new Float32Array(65536);
      for (let h = 0; h < 65536; h++) {
        const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
        halfTable[h] = e === 0 ? sign * f * 2 ** -24 : e === 31 ? (f ? NaN : sign * Infinity)
          : sign * (1 + f / 1024) * 2 ** (e - 15);
      }
    }
    const src = new Uint16Array(half), out = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = halfTable[src[i]];
    return new Uint8Array(out.buffer);
  }

  // What InferenceSession.create takes for a part: its bytes and, for float16 weights, the widened
  // external data (`widened`: given when the caller widened them already).
  function sessionInput(part, widened = part.half && widen(part.half)) {
    return { bytes: new Uint8Array(part.model),
             options: widened ? { externalData: [{ path: HALF_WEIGHTS, data: widened }] } : {} };
  }

  async function loadRuntime(m) {
    const url = URL.createObjectURL(new Blob([m.source], { type: "text/javascript" }));
    ort = await import(url);
    ort.env.logLevel = "error";
    ort.env.wasm.wasmBinary = m.wasm;   // no fetch: the bytes came with the message
    ort.env.wasm.numThreads = m.threads;
    ort.env.wasm.proxy = false;          // this already is a worker
    return { version: ort.env.versions ? ort.env.versions.web || "" : "" };
  }

  // The model is one session, or a few run one after another (its stages, pix2pix.export.stages):
  // between two stages a run yields to this worker's messages and is dropped when the page has
  // sent a newer edit that preempts it, so a stroke's last edit waits at most for one stage.
  // `newest`: the id of the latest preempting edit; every run for an older message is stale,
  // the one in progress and those still queued behind it alike.
  let sessions = [], newest = 0, chain = Promise.resolve();
  const wakeup = new MessageChannel();
  let wake = null;
  wakeup.port1.onmessage = () => wake();
  const yieldToMessages = () => new Promise((resolve) => { wake = resolve; wakeup.port2.postMessage(0); });

  async function loadModel(m) {
    ep = null;
    sessions = [];
    whole = null;
    model = m.config;
    let created = null, lastError = null;
    const widened = m.parts.map((p) => p.half && widen(p.half));
    const inputs = m.parts.map((p, k) => sessionInput(p, widened[k]));
    for (const provider of m.providers) {
      try {
        created = [];
        for (let k = 0; k < m.parts.length; k++) {
          // WebGPU: a stage's outputs stay on the GPU for the next one.
          const keep = provider === "webgpu" && k < m.parts.length - 1 ? { preferredOutputLocation: "gpu-buffer" } : {};
          created.push(await ort.InferenceSession.create(inputs[k].bytes, {
            executionProviders: [provider], graphOptimizationLevel: "all", ...keep, ...inputs[k].options,
          }));
        }
        created.ep = provider;
        break;
      } catch (e) { lastError = e; created = null; }
    }
    if (!created) fail(`cannot load the model file (corrupt, truncated or not ONNX?): ${(lastError && lastError.message) || lastError}`);
    const first = created[0], last = created[created.length - 1];
    const meta = first.inputMetadata && first.inputMetadata[0];
    if (!first.inputNames.includes("input") || !last.outputNames.includes("output")) {
      fail(`the model's inputs are [${first.inputNames}] and outputs [${last.outputNames}]; ` +
           "a pix2pix export has one input named 'input' and one output named 'output' (re-export it with pix2pix export --web)");
    }
    if (meta && meta.isTensor && meta.shape && meta.shape.length !== 4) {
      fail(`the model's input has rank ${meta.shape.length} (shape [${meta.shape}]); ` +
           "a pix2pix generator takes (1, channels, height, width): re-export it with pix2pix export --web");
    }
    sessions = created;
    ep = created.ep;
    // The stages joined (pix2pix.export.web.WHOLE) over the same widened weights: runs that nothing
    // will preempt take it, and skip the stage boundaries' copies. WASM only: WebGPU keeps a
    // stage's outputs on the GPU already. Without it (or if it fails) every run takes the stages.
    if (m.whole && ep === "wasm" && widened.every((w) => w)) {
      try {
        whole = await ort.InferenceSession.create(new Uint8Array(m.whole), {
          executionProviders: [ep], graphOptimizationLevel: "all",
          externalData: widened.map((data, k) => ({ path: PART_WEIGHTS(k), data })) });
      } catch (e) { whole = null; console.info(`pix2pix: running the model's stages only (${e.message || e})`); }
    }
    modelParts = m.parts;  // kept as they came (float16) for profile sessions (benchmarks only)
    // One run at the training size compiles the kernels, so the first stroke is not the slow one.
    const s = model.image_size, t0 = performance.now();
    await forward(new Float32Array(model.in_channels * s * s), s, s);
    if (whole) await forward(new Float32Array(model.in_channels * s * s), s, s, null, [whole]);
    return { ep: created.ep, stages: sessions.length, whole: !!whole, warmup_ms: performance.now() - t0 };
  }

  // The model on (1, C_in, h, w) data; null when `run` was preempted between two stages.
  // `stageMs`: an array given by bench, which gets each stage's ms.
  async function forward(data, h, w, run = null, use = sessions, stageMs = null) {
    let values = { input: new ort.Tensor("float32", data, [1, model.in_channels, h, w]) };
    const made = [];
    try {
      for (let k = 0; k < use.length; k++) {
        if (k > 0 && run) {
          await yieldToMessages();
          if (run.preempted) return null;
        }
        const feeds = {};
        for (const name of use[k].inputNames) feeds[name] = values[name];
        const t = stageMs ? performance.now() : 0;
        const out = await use[k].run(feeds);
        if (stageMs) stageMs.push(performance.now() - t);
        values = { ...values, ...out };
        made.push(...Object.values(out));
      }
    } finally {
      for (const t of made) if (t.location === "gpu-buffer") t.dispose();
    }
    const y = values.output;
    if (!y || y.dims.length !== 4 || y.dims[1] !== model.out_channels) {
      fail(`the model answered shape [${y ? y.dims : "none"}]; expected (1, ${model.out_channels}, H, W)`);
    }
    return y;
  }

  // (h, w) RGBA bytes -> (C_in, H, W) in [-1, 1], H and W padded up to the model's multiple by
  // reflection (replication where the pad exceeds the image), as pix2pix.inference pads.
  function prepare(rgba, h, w) {
    const m = model.multiple, c = model.in_channels;
    const H = Math.ceil(h / m) * m, W = Math.ceil(w / m) * m;
    const reflect = H - h < h && W - w < w;
    const src = (i, n) => (i < n ? i : reflect ? 2 * n - 2 - i : n - 1);
    const x = new Float32Array(c * H * W), plane = H * W;
    for (let y = 0; y < H; y++) {
      const sy = src(y, h);
      for (let xx = 0; xx < W; xx++) {
        const i = (sy * w + src(xx, w)) * 4, o = y * W + xx;
        let r = rgba[i] / 255, g = rgba[i + 1] / 255, b = rgba[i + 2] / 255;
        const a = rgba[i + 3] / 255;
        if (c === 4) {
          x[o] = r * 2 - 1; x[plane + o] = g * 2 - 1; x[2 * plane + o] = b * 2 - 1; x[3 * plane + o] = a * 2 - 1;
          continue;
        }
        if (a < 1) { r = r * a + 1 - a; g = g * a + 1 - a; b = b * a + 1 - a; }  // on white
        if (c === 1) x[o] = (r * LUMA[0] + g * LUMA[1] + b * LUMA[2]) * 2 - 1;
        else { x[o] = r * 2 - 1; x[plane + o] = g * 2 - 1; x[2 * plane + o] = b * 2 - 1; }
      }
    }
    return [x, H, W];
  }

  // (1, C_out, H, W) in [-1, 1] -> (h, w) RGBA bytes; the input's alpha comes back on gray/RGB.
  function finish(y, rgba, h, w, H, W) {
    const d = y.data, c = model.out_channels, plane = H * W, keepAlpha = model.in_channels !== 4;
    const out = new Uint8ClampedArray(h * w * 4);
    const byte = (v) => Math.floor(Math.min(1, Math.max(0, (v + 1) / 2)) * 255 + 0.5);
    for (let yy = 0; yy < h; yy++) {
      for (let xx = 0; xx < w; xx++) {
        const s = yy * W + xx, o = (yy * w + xx) * 4;
        if (c === 1) { out[o] = out[o + 1] = out[o + 2] = byte(d[s]); }
        else { out[o] = byte(d[s]); out[o + 1] = byte(d[plane + s]); out[o + 2] = byte(d[2 * plane + s]); }
        out[o + 3] = c === 4 ? byte(d[3 * plane + s]) : keepAlpha ? rgba[o + 3] : 255;
      }
    }
    return out;
  }

  // Times are absolute (timeOrigin + now), so the page can place them on its own clock.
  const clock = () => performance.timeOrigin + performance.now();

  async function run(m) {
    if (!sessions.length) fail("no model is loaded");
    const me = { get preempted() { return m.id < newest; } };
    if (me.preempted) return { preempted: true };  // queued behind the run it was to replace
    const t0 = clock();
    const [x, H, W] = prepare(m.rgba, m.height, m.width);
    const t1 = clock();
    // `staged`: an edit made while the pen is down, which a newer one may preempt between stages.
    const y = await forward(x, H, W, me, whole && !m.staged ? [whole] : sessions);
    if (!y) return { preempted: true };
    const t2 = clock();
    const rgba = finish(y, m.rgba, m.height, m.width, H, W);
    const t3 = clock();
    return { rgba, width: m.width, height: m.height, inference_ms: t2 - t1, total_ms: t3 - t0,
             times: [t0, t1, t2, t3], transfer: [rgba.buffer] };
  }

  // For benchmarks/browser.py: ms per forward pass of a (1, C, size, size) frame, `runs` times, on
  // the whole graph where there is one (as an edit that ends a stroke runs), else the stages; and
  // (stage_ms, with `stages`) each run's ms per stage (session.run alone: the stage in progress
  // that a preempting edit may wait for).
  async function bench(m) {
    if (!sessions.length) fail("no model is loaded");
    const use = whole && !m.stages ? [whole] : sessions;
    const x = new Float32Array(model.in_channels * m.size * m.size).map((_, i) => Math.sin(i) * 0.9);
    await forward(x, m.size, m.size, null, use);
    const ms = [], stage_ms = [];
    for (let i = 0; i < m.runs; i++) {
      const t0 = performance.now();
      await forward(x, m.size, m.size, null, use, m.stages ? (stage_ms[i] = []) : null);
      ms.push(performance.now() - t0);
    }
    return { ms, stage_ms };
  }

  // ONNX Runtime's own profile of `runs` forward passes (a second session with profiling on): it
  // prints its JSON events to the console at endProfiling (benchmarks/browser.py --profile reads
  // them there). Relative shares only: the profiler adds its own cost to every op.
  async function profile(m) {
    if (!modelParts) fail("no model is loaded");
    const profiled = [];
    for (const input of modelParts.map((part) => sessionInput(part))) {
      profiled.push(await ort.InferenceSession.create(input.bytes, { executionProviders: [ep],
        graphOptimizationLevel: "all", enableProfiling: true, ...input.options }));
    }
    const x = new Float32Array(model.in_channels * m.size * m.size).map((_, i) => Math.sin(i) * 0.9);
    for (let i = 0; i < m.runs; i++) await forward(x, m.size, m.size, null, profiled);
    for (const s of profiled) {
      s.endProfiling();
      await s.release();
    }
    return {};
  }

  const handlers = { runtime: loadRuntime, model: loadModel, run, bench, profile };
  async function handle(m) {
    try {
      const reply = await handlers[m.type](m);
      const transfer = reply.transfer || [];
      delete reply.transfer;
      self.postMessage({ id: m.id, ok: true, ...reply }, transfer);
    } catch (e) {
      self.postMessage({ id: m.id, ok: false, error: String((e && e.message) || e) });
    }
  }
  self.onmessage = (event) => {
    const m = event.data;
    if (m.type === "run" && m.preempt) newest = m.id;  // a newer edit: drop the stale runs
    if (m.type === "preempt") { newest = Math.max(newest, m.id); return; }  // a newer edit went to another worker
    chain = chain.then(() => handle(m));  // one at a time: a session runs one call at once
  };
}
