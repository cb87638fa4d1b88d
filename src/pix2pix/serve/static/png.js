// pix2pix studio: the canvas as a PNG for the server, built in JavaScript.
"use strict";

// The canvas as an uncompressed PNG (stored deflate blocks), built from `pixels` in about a
// millisecond. canvas.toBlob was the served studio's lost second: Chromium encodes it in an idle
// task and, while a stroke keeps the page busy, starts it only after its idle-task start timeout
// (kIdleTaskStartTimeoutDelayMs, 1000 ms on desktop), hence round trips of ~1 s beside a 12 ms
// forward. On loopback the extra bytes cost nothing. Lossless, as the label maps need.
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

// The PNG's bytes (a Uint8Array); storedPng below wraps them in a Blob.
function storedPngBytes(image) {
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
  return out;
}

function storedPng(image) { return new Blob([storedPngBytes(image)], { type: "image/png" }); }
