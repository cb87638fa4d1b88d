// pix2pix studio: the examples a model carries (held-out inputs stored with it by
// `pix2pix export --web` or in its directory's examples/ folder), a picker to switch between them,
// and a palette of the photo's own colours for photo-input models. Loaded before studio.js, whose
// globals (state, pixels, canvas, ctx, $, WEB, ...) it uses when called.
"use strict";

const PHOTO_COLOURS = 10;         // swatches offered for a photo
const examples = { list: [], model: null, images: new Map(), shown: null };

// The entries of a model's examples: {name, input, output, source}, from web.js in an exported
// page or from the server (GET /api/models/NAME/examples).
async function exampleList(model) {
  if (WEB) return (WEB.config.examples || []).filter((e) => `examples/${e.input}` in WEB.files);
  const resp = await fetch(`/api/models/${encodeURIComponent(model.name)}/examples`);
  if (!resp.ok) return [];  // a server without the route, or a model without examples
  return (await resp.json()).examples || [];
}

// An example's input as ImageData, decoded once (PNG bytes from examples.js or from the server).
async function exampleImage(model, entry) {
  const key = `${model.name}/${entry.input}`;
  if (!examples.images.has(key)) {
    examples.images.set(key, (async () => {
      let blob;
      if (WEB) blob = new Blob([await fileBytes(`examples/${entry.input}`)], { type: "image/png" });
      else {
        const resp = await fetch(`/api/models/${encodeURIComponent(model.name)}/examples/${encodeURIComponent(entry.input)}`);
        if (!resp.ok) throw new Error(`example ${entry.name}: HTTP ${resp.status}`);
        blob = await resp.blob();
      }
      // No colour management or premultiplication: the page must read the bytes Python read.
      const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
      const c = document.createElement("canvas");
      c.width = bitmap.width; c.height = bitmap.height;
      const cx = c.getContext("2d", { willReadFrequently: true });
      cx.drawImage(bitmap, 0, 0);
      bitmap.close();
      return { data: cx.getImageData(0, 0, c.width, c.height), thumb: c.toDataURL("image/png") };
    })());
  }
  return examples.images.get(key);
}

// Build the picker for `model` and open its first example on an untouched canvas.
// Resolves to whether an example was opened (then a translation is already scheduled).
async function showExamples(model, open) {
  const box = $("examples");
  let list = [];
  try { list = await exampleList(model); } catch (e) { list = []; }
  if (state.model !== model) return false;  // switched meanwhile
  examples.list = list; examples.model = model;
  box.replaceChildren();
  box.hidden = list.length === 0;
  const loaded = await Promise.all(list.map((e) => exampleImage(model, e).catch(() => null)));
  if (state.model !== model) return false;
  list.forEach((entry, i) => {
    if (!loaded[i]) return;
    const b = document.createElement("button");
    b.type = "button";
    b.className = "example";
    b.dataset.example = entry.name;
    b.title = entry.source ? `${entry.name} (${entry.source})` : entry.name;
    b.setAttribute("role", "option");
    b.setAttribute("aria-label", `example ${i + 1}: ${entry.name}`);
    b.setAttribute("aria-selected", "false");
    const img = document.createElement("img");
    img.src = loaded[i].thumb; img.alt = "";
    b.append(img);
    b.addEventListener("click", () => openExample(model, entry, loaded[i].data, true));
    box.append(b);
  });
  const first = list.findIndex((e, i) => loaded[i]);
  if (!open || first < 0) return false;
  openExample(model, list[first], loaded[first].data, false);
  return true;
}

// Put an example on the canvas (undoable when the user picked it), as the base the eraser
// restores, with the photo's own colours for a model without a label palette.
function openExample(model, entry, data, undoable) {
  if (undoable) checkpoint();
  useImage(copyPixels(data));
  examples.shown = entry.name;
  for (const b of $("examples").querySelectorAll(".example")) b.setAttribute("aria-selected", String(b.dataset.example === entry.name));
  canvas.dataset.example = entry.name;
  changed();
  state.touched = false;  // an unedited example: a model switch may replace it
}

// The canvas now shows `image` (an example or an opened photo): it becomes the eraser's base, and
// for a photo-input model the palette offers its colours.
function useImage(image) {
  if (canvas.width !== image.width || canvas.height !== image.height) {
    canvas.width = image.width; canvas.height = image.height;
  }
  pixels = image;
  state.base = copyPixels(image);
  render();
  delete canvas.dataset.example;
  if (!(state.model && state.model.palette && state.model.palette.length)) {
    const colours = photoColours(image, PHOTO_COLOURS);
    buildPalette(colours);
    setColour(colours[0]);
  }
}

// The `k` most frequent colours of an image, at least a little apart: a 4-bit-per-channel
// histogram, each chosen bin's mean colour, most frequent first. (R, G, B) lists in 0..255.
function photoColours(image, k) {
  const d = image.data, count = new Uint32Array(4096), sums = new Float64Array(4096 * 3);
  for (let i = 0; i < d.length; i += 4) {
    const bin = ((d[i] >> 4) << 8) | ((d[i + 1] >> 4) << 4) | (d[i + 2] >> 4);
    count[bin]++; sums[bin * 3] += d[i]; sums[bin * 3 + 1] += d[i + 1]; sums[bin * 3 + 2] += d[i + 2];
  }
  const bins = [...count.keys()].filter((b) => count[b] > 0).sort((a, b) => count[b] - count[a] || a - b);
  const chosen = [];
  for (const minDist of [48, 24, 0]) {  // relax the spacing when the photo has few distinct colours
    for (const b of bins) {
      if (chosen.length >= k) break;
      const c = [0, 1, 2].map((j) => Math.round(sums[b * 3 + j] / count[b]));
      if (chosen.every((o) => Math.hypot(o[0] - c[0], o[1] - c[1], o[2] - c[2]) > minDist)) chosen.push(c);
    }
  }
  return chosen.length ? chosen : [[0, 0, 0]];
}
