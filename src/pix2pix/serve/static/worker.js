// pix2pix studio, in-browser mode: the translation worker (ONNX Runtime Web).
//
// A classic script that only defines a function: the studio turns its source into a blob: Worker,
// which is the one way to start a worker from a page opened from file:// (browsers refuse a
// file:// worker URL). Every input reaches it by message: the runtime's source text and .wasm
// bytes, the model bytes, then canvases to translate, so it never loads anything itself.
"use strict";

function pix2pixWorker() {
  const LUMA = [0.299, 0.587, 0.114];  // as pix2pix.util.imageio.LUMA: gray inputs match the server's
  let ort = null, session = null, model = null, modelBytes = null;

  function fail(text) { throw new Error(text); }

  async function loadRuntime(m) {
    const url = URL.createObjectURL(new Blob([m.source], { type: "text/javascript" }));
    ort = await import(url);
    ort.env.logLevel = "error";
    ort.env.wasm.wasmBinary = m.wasm;   // no fetch: the bytes came with the message
    ort.env.wasm.numThreads = m.threads;
    ort.env.wasm.proxy = false;          // this already is a worker
    return { version: ort.env.versions ? ort.env.versions.web || "" : "" };
  }

  async function loadModel(m) {
    session = null;
    model = m.config;
    let created = null, lastError = null;
    for (const ep of m.providers) {
      try {
        created = await ort.InferenceSession.create(new Uint8Array(m.bytes), {
          executionProviders: [ep], graphOptimizationLevel: "all",
        });
        created.ep = ep;
        break;
      } catch (e) { lastError = e; }
    }
    if (!created) fail(`cannot load the model file (corrupt, truncated or not ONNX?): ${(lastError && lastError.message) || lastError}`);
    const meta = created.inputMetadata && created.inputMetadata[0];
    if (!created.inputNames.includes("input") || !created.outputNames.includes("output")) {
      fail(`the model's inputs are [${created.inputNames}] and outputs [${created.outputNames}]; ` +
           "a pix2pix export has one input named 'input' and one output named 'output' (re-export it with pix2pix export --web)");
    }
    if (meta && meta.isTensor && meta.shape && meta.shape.length !== 4) {
      fail(`the model's input has rank ${meta.shape.length} (shape [${meta.shape}]); ` +
           "a pix2pix generator takes (1, channels, height, width): re-export it with pix2pix export --web");
    }
    session = created;
    modelBytes = new Uint8Array(m.bytes);  // kept for bench/profile sessions (benchmarks only)
    // One run at the training size compiles the kernels, so the first stroke is not the slow one.
    const s = model.image_size, t0 = performance.now();
    await forward(new Float32Array(model.in_channels * s * s), s, s);
    return { ep: created.ep, warmup_ms: performance.now() - t0 };
  }

  async function forward(data, h, w) {
    const x = new ort.Tensor("float32", data, [1, model.in_channels, h, w]);
    const out = await session.run({ input: x });
    const y = out.output;
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

  async function run(m) {
    if (!session) fail("no model is loaded");
    const t0 = performance.now();
    const [x, H, W] = prepare(m.rgba, m.height, m.width);
    const t1 = performance.now();
    const y = await forward(x, H, W);
    const t2 = performance.now();
    const rgba = finish(y, m.rgba, m.height, m.width, H, W);
    return { rgba, width: m.width, height: m.height, inference_ms: t2 - t1, total_ms: performance.now() - t0,
             transfer: [rgba.buffer] };
  }

  // For benchmarks/browser.py: ms per forward pass of a (1, C, size, size) frame, `runs` times.
  async function bench(m) {
    if (!session) fail("no model is loaded");
    const x = new Float32Array(model.in_channels * m.size * m.size).map((_, i) => Math.sin(i) * 0.9);
    await forward(x, m.size, m.size);
    const ms = [];
    for (let i = 0; i < m.runs; i++) {
      const t0 = performance.now();
      await forward(x, m.size, m.size);
      ms.push(performance.now() - t0);
    }
    return { ms };
  }

  // ONNX Runtime's own profile of `runs` forward passes (a second session with profiling on): it
  // prints its JSON events to the console at endProfiling (benchmarks/browser.py --profile reads
  // them there). Relative shares only: the profiler adds its own cost to every op.
  async function profile(m) {
    if (!modelBytes) fail("no model is loaded");
    const s = await ort.InferenceSession.create(modelBytes, { executionProviders: [session.ep],
      graphOptimizationLevel: "all", enableProfiling: true });
    const saved = session;
    session = s;
    try {
      const x = new Float32Array(model.in_channels * m.size * m.size).map((_, i) => Math.sin(i) * 0.9);
      for (let i = 0; i < m.runs; i++) await forward(x, m.size, m.size);
    } finally { session = saved; }
    s.endProfiling();
    await s.release();
    return {};
  }

  const handlers = { runtime: loadRuntime, model: loadModel, run, bench, profile };
  self.onmessage = async (event) => {
    const m = event.data;
    try {
      const reply = await handlers[m.type](m);
      const transfer = reply.transfer || [];
      delete reply.transfer;
      self.postMessage({ id: m.id, ok: true, ...reply }, transfer);
    } catch (e) {
      self.postMessage({ id: m.id, ok: false, error: String((e && e.message) || e) });
    }
  };
}
