// pix2pix studio, video mode: the webcam (getUserMedia) or an opened clip, translated frame by
// frame as it plays, by whichever engine the page uses (the Run menu): in this browser (ONNX
// Runtime Web) or on the server (each frame a "frame" message on the /api/live socket, else a
// POST /api/translate). Each video frame that arrives while the engine is free becomes the input
// canvas (scaled to the model's training size on its longer side, or the size chosen in the
// toolbar: the generators are fully convolutional) and goes through the same path
// as a stroke; frames arriving meanwhile are skipped, and the server keeps only the latest frame
// it was sent, so the output follows the latest frame instead of a queue and the latency stays
// bounded. Optional temporal blend (each shown frame averaged with the previous shown one, which
// damps frame-to-frame flicker), fps and latency (frame captured to output shown), and recording
// of the translated output (MediaRecorder on a recording canvas, one recorded frame per translated
// frame). Loaded before studio.js, whose globals (state, net, live, pixels, canvas, ctx, $, RUN,
// engine, LIVE_AHEAD) it uses when called.
"use strict";

const video = { on: false, blend: false, prev: null, recorder: null, track: null, chunks: [], recorded: 0,
                pending: [], pumping: false, recCanvas: null, stopping: false, stopVersion: 0, shownVersion: 0,
                shownAt: [], captured: new Map(), frames: 0, translated: 0, url: null, recordingUrl: null };
// Stopping a recording waits this long at most for the frame being translated, then as long again
// for the encoder to hand over every requested frame (a stalled engine must not hang the button).
const FLUSH_MS = 3000;

function videoEl() { return $("video-src"); }

async function startVideo(source) {
  stopVideo();
  clearVideoStats();
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

// The stats show this run's frames, not the last run's (cleared as soon as a source is chosen).
function clearVideoStats() {
  const stats = $("video-stats");
  for (const key of ["frames", "fps", "latency"]) delete stats.dataset[key];
  stats.textContent = "";
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
  if (!video.recorder) $("video-record").disabled = true;
}

function nextVideoFrame() {
  if (!video.on) return;
  const el = videoEl();
  if (el.requestVideoFrameCallback) el.requestVideoFrameCallback(onVideoFrame);
  else requestAnimationFrame(onVideoFrame);
}

// Whether the engine can take a frame now: nothing waiting to be sent, and nothing in flight (in
// the browser, over HTTP) or fewer than LIVE_AHEAD frames unanswered on the socket (the server
// translates one while the next travels, and keeps only the latest).
function engineFree() {
  if (!state.model || net.dirty || net.controller) return false;
  if (RUN === "browser") return !!engine.loaded;
  return live.ws ? live.sent.size < LIVE_AHEAD : true;
}

function onVideoFrame() {
  if (!video.on) return;
  // Busy: skip this frame; the next one that arrives when the engine is free goes instead.
  if (engineFree()) grabVideoFrame();
  nextVideoFrame();
}

function grabVideoFrame() {
  const el = videoEl(), s = Number($("video-size").value) || state.model.image_size;
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

// Whether a canvas version is a video frame (not a stroke): sent as a "frame", blended, counted.
function isVideoFrame(version) { return video.captured.has(version); }

// Called with each translated frame's pixels before they are drawn: the blend with the previous
// shown frame (for video frames only, also those still in flight when the video stopped).
function videoOutput(rgba, version) {
  if (!video.blend || !isVideoFrame(version)) return rgba;
  if (video.prev && video.prev.length === rgba.length) {
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
  video.shownVersion = Math.max(video.shownVersion, version);
  if (!isVideoFrame(version)) return;
  const now = performance.now();
  video.translated += 1;
  video.shownAt.push(now);
  while (video.shownAt.length > 1 && now - video.shownAt[0] > 2000) video.shownAt.shift();
  const t = video.captured.get(version);
  for (const v of [...video.captured.keys()]) if (v < version) video.captured.delete(v);
  const span = (video.shownAt[video.shownAt.length - 1] - video.shownAt[0]) / 1000;
  const fps = span > 0 ? (video.shownAt.length - 1) / span : 0;
  const el = $("video-stats");
  el.dataset.fps = fps.toFixed(1);
  el.dataset.frames = String(video.translated);
  el.dataset.latency = (now - t).toFixed(0);
  el.dataset.run = RUN;
  el.textContent = `${fps.toFixed(1)} fps · ${Math.round(now - t)} ms frame to output (${RUN === "browser" ? "in browser" : "on the server"})`;
  // While stopping, only the frame that was being translated at the click still goes in.
  if (video.recorder && video.track && (!video.stopping || version <= video.stopVersion)) {
    const out = $("output-canvas");
    video.pending.push(outputContext(out.width, out.height).getImageData(0, 0, out.width, out.height));  // studio.js
    pumpRecording();
  }
}

// Frames into the recording, one per animation frame. The capture track takes the canvas as it is
// at the next paint, so two outputs shown within one paint (answers from the socket arrive in
// bursts) were one recorded frame: seen as 8 requested and 7 in the file. Each shown output is
// copied into a queue and drawn on a canvas of its own, one per paint.
function pumpRecording() {
  if (video.pumping) return;
  video.pumping = true;
  const step = () => {
    const image = video.pending.shift();
    if (!image || !video.track) { video.pumping = false; video.pending = []; return; }
    const c = video.recCanvas;
    if (c.width !== image.width || c.height !== image.height) { c.width = image.width; c.height = image.height; }
    c.getContext("2d").putImageData(image, 0, 0);
    video.track.requestFrame();
    video.recorded += 1;
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}

function startRecording() {
  const out = $("output-canvas");
  video.recCanvas = document.createElement("canvas");  // not in the page: only the recording sees it
  video.recCanvas.width = out.width; video.recCanvas.height = out.height;
  video.pending = [];
  const stream = video.recCanvas.captureStream(0);  // frames only when requestFrame() says so
  video.track = stream.getVideoTracks()[0];
  const type = ["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"].find((t) => MediaRecorder.isTypeSupported(t));
  video.recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
  video.chunks = []; video.recorded = 0; video.stopping = false;
  const recorder = video.recorder;
  recorder.ondataavailable = (e) => { if (e.data.size) video.chunks.push(e.data); };
  recorder.onstop = () => {
    const blob = new Blob(video.chunks, { type: recorder.mimeType || "video/webm" });
    const link = $("video-download");
    if (video.recordingUrl) URL.revokeObjectURL(video.recordingUrl);
    video.recordingUrl = URL.createObjectURL(blob);
    link.href = video.recordingUrl;
    link.download = `pix2pix-${state.model ? state.model.name : "video"}.webm`;
    link.dataset.frames = String(recorder.pix2pixFrames);
    link.dataset.written = String(recorder.pix2pixWritten);
    link.dataset.rounds = String(recorder.pix2pixRounds);
    link.hidden = false;
  };
  recorder.start();
  $("video-download").hidden = true;
  $("video-record").setAttribute("aria-pressed", "true");
  $("video-record").textContent = "Stop recording";
}

// Stop recording without losing the last frames: MediaRecorder.stop() drops whatever the encoder
// has not handed over yet (seen: the frame translated just before the click missing from the
// file, 7 requested and 6 decoded). So first the frame
// being translated at the click is shown and requested, then requestData() is asked until the
// file holds one block per requested frame (counted in the WebM itself), then stop().
async function stopRecording() {
  const recorder = video.recorder;
  if (!recorder || video.stopping) return;
  video.stopping = true;
  video.stopVersion = state.version;  // the latest frame grabbed, maybe still being translated
  const button = $("video-record");
  button.disabled = true;
  button.textContent = "Finishing…";
  const until = async (done) => {
    for (const end = performance.now() + FLUSH_MS; !(await done()) && performance.now() < end;) {
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
  };
  await until(() => video.shownVersion >= video.stopVersion || !isVideoFrame(video.stopVersion));
  await until(() => !video.pumping);  // every shown frame drawn into the recording
  const wanted = video.recorded;
  const track = video.track;
  video.track = null;  // no more frames into this recording
  let written = 0, rounds = 0;
  await until(async () => {
    rounds += 1;
    const data = new Promise((resolve) => {
      recorder.addEventListener("dataavailable", resolve, { once: true });
      setTimeout(resolve, 500);  // no event (a recorder in error): count what there is, try again
    });
    recorder.requestData();
    await data;
    written = webmBlocks(new Uint8Array(await new Blob(video.chunks).arrayBuffer()));
    return written >= wanted;
  });
  recorder.pix2pixFrames = wanted;
  recorder.pix2pixWritten = written;
  recorder.pix2pixRounds = rounds;  // requestData rounds it took: 1 when the encoder was done
  recorder.stop();
  track.stop();
  video.recorder = null;
  video.stopping = false;
  button.setAttribute("aria-pressed", "false");
  button.textContent = "Record";
  button.disabled = !video.on;
}

// How many frames (SimpleBlock and BlockGroup elements) a WebM byte stream holds so far. A live
// recording's Segment and Clusters have unknown sizes, so those two are walked into; every other
// element is skipped by its size, and an element not complete yet ends the count.
function webmBlocks(bytes) {
  const SEGMENT = 0x18538067, CLUSTER = 0x1f43b675, SIMPLE_BLOCK = 0xa3, BLOCK_GROUP = 0xa0;
  const vint = (pos, keepMarker) => {
    if (pos >= bytes.length) return null;
    const first = bytes[pos];
    let len = 1;
    while (len <= 8 && !(first & (0x80 >> (len - 1)))) len++;
    if (len > 8 || pos + len > bytes.length) return null;
    let value = keepMarker ? first : first & (0xff >> len), all = (first & (0xff >> len)) === (0xff >> len);
    for (let i = 1; i < len; i++) { value = value * 256 + bytes[pos + i]; all = all && bytes[pos + i] === 0xff; }
    return { value, len, unknown: all };
  };
  let pos = 0, blocks = 0;
  while (pos < bytes.length) {
    const id = vint(pos, true);
    if (!id) break;
    const size = vint(pos + id.len, false);
    if (!size) break;
    const start = pos + id.len + size.len;
    if (id.value === SEGMENT || id.value === CLUSTER) { pos = start; continue; }
    if (size.unknown || start + size.value > bytes.length) break;
    if (id.value === SIMPLE_BLOCK || id.value === BLOCK_GROUP) blocks += 1;
    pos = start + size.value;
  }
  return blocks;
}

function wireVideo() {
  const box = $("video-controls");
  if (!box) return;
  box.hidden = false;
  $("video-camera").addEventListener("click", async () => {
    // Browsers offer cameras only to secure pages: https:// or this machine (localhost).
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setStatus("No camera here: browsers offer the camera only on https:// pages or on localhost. " +
        "Open a clip instead, or serve the studio over HTTPS.", true);
      return;
    }
    clearVideoStats();
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
