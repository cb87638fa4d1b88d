// pix2pix studio: the input and output images drawn on whole device pixels, at any zoom.
//
// Laid out by CSS alone (width: 100%, centred), an image's edges fall between device pixels at
// zooms like 125% or 150%; the browser then blends its edge rows with the page behind, a light
// border that is not in the image. Here each shown canvas/img gets a size of whole device pixels
// and a sub-pixel shift onto the device grid, redone when the layout, the zoom or the image size
// changes.
"use strict";

function snapToDevicePixels(el) {
  const natural = el.tagName === "IMG" ? [el.naturalWidth, el.naturalHeight] : [el.width, el.height];
  el.style.width = ""; el.style.height = ""; el.style.transform = "";
  if (el.hidden || !natural[0] || !natural[1]) return;
  const dpr = window.devicePixelRatio || 1;
  const box = el.getBoundingClientRect();
  if (!box.width) return;
  const w = Math.max(1, Math.floor(box.width * dpr + 1e-6));  // device pixels
  const h = Math.max(1, Math.round((w * natural[1]) / natural[0]));
  el.style.width = `${w / dpr}px`;
  el.style.height = `${h / dpr}px`;
  const placed = el.getBoundingClientRect();
  const fx = placed.left * dpr - Math.round(placed.left * dpr), fy = placed.top * dpr - Math.round(placed.top * dpr);
  if (Math.abs(fx) > 1e-3 || Math.abs(fy) > 1e-3) el.style.transform = `translate(${-fx / dpr}px, ${-fy / dpr}px)`;
}

(function watchLayout() {
  const shown = ["input", "output", "output-canvas"].map((id) => document.getElementById(id));
  const snapAll = () => shown.forEach(snapToDevicePixels);
  let queued = false;
  const later = () => { if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; snapAll(); }); } };
  const resize = new ResizeObserver(later);
  for (const el of shown) resize.observe(el.parentElement);
  // A canvas's size is its width/height attributes; an img's comes with each load.
  new MutationObserver(later).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["width", "height", "hidden", "src"] });
  shown[1].addEventListener("load", later);
  let zoom = null;
  const watchZoom = () => {
    if (zoom) zoom.removeEventListener("change", onZoom);
    zoom = matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
    zoom.addEventListener("change", onZoom);
  };
  function onZoom() { watchZoom(); later(); }
  watchZoom();
  window.addEventListener("resize", later);
  later();
})();
