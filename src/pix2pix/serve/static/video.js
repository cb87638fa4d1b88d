// pix2pix studio, video mode (in-browser engine): the webcam (getUserMedia) or an opened clip,
// translated frame by frame as it plays. Each video frame that arrives while the engine is idle
// becomes the input canvas (scaled to the model's training size on its longer side) and goes
// through the same one-in-flight path as a stroke; frames arriving meanwhile are skipped, so the
// output follows the latest frame instead of queueing. Optional temporal blend (each shown frame
// averaged with the previous shown one, which damps frame-to-frame flicker), fps and latency
// (frame captured to output shown), and recording of the translated output (MediaRecorder on the
// output canvas, one recorded frame per translated frame). Loaded before studio.js, whose globals
// (state, net, pixels, canvas, ctx, $, RUN, engine) it uses when called.
"use strict";

const video = { on: false, blend: false, prev: null, recorder: null, track: null, chunks: [], recorded: 0,
                shownAt: [], captured: new Map(), frames: 0, translated: 0, url: null, recordingUrl: null };

function videoEl() { return $("video-src"); }

async function startVideo(source) {
  stopVideo();
  const el = videoEl();
  if (source instanceof MediaStream) { el.srcObject = source; }
  else {
    el.srcObject = null;
    video.url = URL.createObjectURL(source);
    el.src = video.url;
    el.loop = true;
  }
  el.muted = true;
  try { await el.play(); } catch (e) { setStatus(`Cannot play that video: ${e.message || e}`, true); return; }
  video.on = true; video.prev = null; video.shownAt = []; video.frames = 0; video.translated = 0;
  document.body.dataset.video = "on";
  $("video-stop").disabled = false;
  $("video-record").disabled = false;
  setStatus("");
  nextVideoFrame();
}

function stopVideo() {
  if (video.recorder) stopRecording();
  video.on = false;
  const el = videoEl();
  if (el.srcObject) { for (const t of el.srcObject.getTracks()) t.stop(); el.srcObject = null; }
  el.pause();
  el.removeAttribute("src");
  if (video.url) { URL.revokeObjectURL(video.url); video.url = null; }
  delete document.body.dataset.video;
  $("video-stop").disabled = true;
  $("video-record").disabled = true;
}

function nextVideoFrame() {
  if (!video.on) return;
  const el = videoEl();
  if (el.requestVideoFrameCallback) el.requestVideoFrameCallback(onVideoFrame);
  else requestAnimationFrame(onVideoFrame);
}

function onVideoFrame() {
  if (!video.on) return;
  // Busy: skip this frame; the next one that arrives when the engine is idle goes instead.
  if (!net.controller && !net.dirty && engine.loaded && state.model) grabVideoFrame();
  nextVideoFrame();
}

function grabVideoFrame() {
  const el = videoEl(), s = state.model.image_size;
  if (!el.videoWidth || !el.videoHeight) return;
  const scale = s / Math.max(el.videoWidth, el.videoHeight);
  const w = Math.max(1, Math.round(el.videoWidth * scale)), h = Math.max(1, Math.round(el.videoHeight * scale));
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  ctx.drawImage(el, 0, 0, w, h);
  pixels = ctx.getImageData(0, 0, w, h);
  state.base = null;
  video.frames += 1;
  video.captured.set(state.version + 1, performance.now());
  changed();
}

// Called by the in-browser engine with each translated frame before it is drawn: the blend.
function videoOutput(rgba) {
  if (!video.on) return rgba;
  if (video.blend && video.prev && video.prev.length === rgba.length) {
    for (let i = 0; i < rgba.length; i += 4) {
      rgba[i] = (rgba[i] + video.prev[i] + 1) >> 1;
      rgba[i + 1] = (rgba[i + 1] + video.prev[i + 1] + 1) >> 1;
      rgba[i + 2] = (rgba[i + 2] + video.prev[i + 2] + 1) >> 1;
    }
  }
  video.prev = new Uint8ClampedArray(rgba);
  return rgba;
}

// Called after a translated frame is on the output canvas: stats and the recording's frame.
function videoShown(version) {
  if (!video.on) return;
  const now = performance.now();
  video.translated += 1;
  video.shownAt.push(now);
  while (video.shownAt.length > 1 && now - video.shownAt[0] > 2000) video.shownAt.shift();
  const t = video.captured.get(version);
  for (const v of [...video.captured.keys()]) if (v <= version) video.captured.delete(v);
  const span = (video.shownAt[video.shownAt.length - 1] - video.shownAt[0]) / 1000;
  const fps = span > 0 ? (video.shownAt.length - 1) / span : 0;
  const el = $("video-stats");
  el.dataset.fps = fps.toFixed(1);
  el.dataset.frames = String(video.translated);
  if (t !== undefined) el.dataset.latency = (now - t).toFixed(0);
  el.textContent = `${fps.toFixed(1)} fps · ${t === undefined ? "–" : Math.round(now - t)} ms frame to output`;
  if (video.recorder && video.track) { video.track.requestFrame(); video.recorded += 1; }
}

function startRecording() {
  const stream = $("output-canvas").captureStream(0);  // frames only when requestFrame() says so
  video.track = stream.getVideoTracks()[0];
  const type = ["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"].find((t) => MediaRecorder.isTypeSupported(t));
  video.recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
  video.chunks = []; video.recorded = 0;
  video.recorder.ondataavailable = (e) => { if (e.data.size) video.chunks.push(e.data); };
  const recorder = video.recorder;
  recorder.onstop = () => {
    const blob = new Blob(video.chunks, { type: recorder.mimeType || "video/webm" });
    const link = $("video-download");
    if (video.recordingUrl) URL.revokeObjectURL(video.recordingUrl);
    video.recordingUrl = URL.createObjectURL(blob);
    link.href = video.recordingUrl;
    link.download = `pix2pix-${state.model ? state.model.name : "video"}.webm`;
    link.dataset.frames = String(recorder.pix2pixFrames);
    link.hidden = false;
  };
  recorder.start();
  $("video-record").setAttribute("aria-pressed", "true");
  $("video-record").textContent = "Stop recording";
}

function stopRecording() {
  const recorder = video.recorder;
  if (!recorder) return;
  recorder.pix2pixFrames = video.recorded;
  video.recorder = null;
  recorder.stop();
  if (video.track) { video.track.stop(); video.track = null; }
  $("video-record").setAttribute("aria-pressed", "false");
  $("video-record").textContent = "Record";
}

function wireVideo() {
  const box = $("video-controls");
  if (RUN !== "browser" || !box) return;  // served mode translates on the server: not wired yet
  box.hidden = false;
  $("video-camera").addEventListener("click", async () => {
    try { await startVideo(await navigator.mediaDevices.getUserMedia({ video: true, audio: false })); }
    catch (e) { setStatus(`No camera: ${e.message || e}`, true); }
  });
  $("video-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) startVideo(file);
    event.target.value = "";
  });
  $("video-stop").addEventListener("click", stopVideo);
  $("video-blend").addEventListener("change", (e) => { video.blend = e.target.checked; video.prev = null; });
  $("video-record").addEventListener("click", () => (video.recorder ? stopRecording() : startRecording()));
}
