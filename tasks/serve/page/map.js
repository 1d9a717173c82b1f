// The page's Map view: every file of the catalogue as a point (near files sound alike), drawn
// into one canvas's pixels so that 100,000 points redraw in a few milliseconds. Drag pans, the
// wheel zooms, a click plays the nearest file, shift-drag selects a box of files. The last
// search's hits are ringed. Uses app.js's helpers ($, element, api, player).
"use strict";

// Twenty categorical colours (Tableau 20); beyond them "other", and light grey for "none".
const MAP_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
  "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6", "#8cd17d", "#f1ce63", "#d4a6c8", "#fabfd2", "#d7b5a6", "#79706e"];
const MAP_OTHER = "#8d96a8";
const MAP_NONE = "#d5d9e0";
const MAP_HIT = "#111827";
const PICK_PIXELS = 8; // how near (CSS px) the pointer must be to a point to pick it

const mapState = {
  data: null, xs: null, ys: null, colours: null, grey: null,
  scale: 1, centreX: 0, centreY: 0, selected: [], drag: null, stats: null,
};
let searchHits = []; // keys of the last search's hits (app.js sets it)

function rgba(hex) {
  const value = parseInt(hex.slice(1), 16);
  // ImageData as Uint32 is little-endian ABGR
  return (255 << 24 | (value & 0xff) << 16 | (value & 0xff00) | (value >> 16)) >>> 0;
}

async function loadMap() {
  if (mapState.data) { drawMap(); return; }
  const started = performance.now();
  $("map-status").textContent = "loading the map…";
  let data;
  try {
    data = await api("/api/map");
  } catch (error) {
    $("map-status").textContent = `${error.message}`;
    return;
  }
  const loaded = performance.now();
  mapState.data = data;
  mapState.xs = Float32Array.from(data.x);
  mapState.ys = Float32Array.from(data.y);
  $("map-colour").replaceChildren(...Object.keys(data.colour_by).map((scheme) =>
    element("option", { value: scheme }, scheme.startsWith("predicted:") ? `predicted ${scheme.slice(10)}` : scheme)));
  colourBy($("map-colour").value);
  const drawMs = drawMap();
  mapState.stats = { points: data.files, fetchMs: Math.round(loaded - started), drawMs: Math.round(drawMs), firstDrawMs: Math.round(performance.now() - started) };
  window.mapStats = mapState.stats;
  const p = data.projection;
  $("map-status").textContent = `${data.files.toLocaleString()} files · drawn in ${mapState.stats.firstDrawMs} ms · ${p.method} map fitted on ${p.fitted_files.toLocaleString()} files${p.preservation == null ? "" : `, neighbours kept ${p.preservation.toFixed(2)}`}`;
}

// Each point's colour (and whether it is grey, drawn first so coloured points stay on top).
function colourBy(scheme) {
  const category = mapState.data.colour_by[scheme];
  const shown = Math.min(category.values.length, MAP_COLOURS.length - (category.values.length > MAP_COLOURS.length ? 1 : 0));
  const table = category.values.map((_, i) => rgba(i < shown ? MAP_COLOURS[i] : MAP_OTHER));
  const none = rgba(MAP_NONE);
  mapState.colours = Uint32Array.from(category.codes, (code) => (code < 0 ? none : table[code]));
  mapState.grey = Uint8Array.from(category.codes, (code) => (code < 0 ? 1 : 0));
  const entries = category.values.slice(0, shown).map((value, i) =>
    element("span", { class: "entry" }, element("i", { style: `background:${MAP_COLOURS[i]}` }), `${value} (${category.counts[i].toLocaleString()})`));
  const others = category.counts.slice(shown).reduce((sum, n) => sum + n, 0);
  if (others) entries.push(element("span", { class: "entry" }, element("i", { style: `background:${MAP_OTHER}` }), `other (${others.toLocaleString()})`));
  const unset = category.codes.length - category.counts.reduce((sum, n) => sum + n, 0);
  if (unset) entries.push(element("span", { class: "entry" }, element("i", { style: `background:${MAP_NONE}` }), `none (${unset.toLocaleString()})`));
  $("map-legend").replaceChildren(...entries);
}

function toScreen(canvas) {
  const half = Math.min(canvas.width, canvas.height) / 2 * 0.94;
  return { scale: half * mapState.scale, ox: canvas.width / 2, oy: canvas.height / 2 };
}

// Returns the time drawing took (ms).
function drawMap() {
  const started = performance.now();
  const canvas = $("map-canvas");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(canvas.clientWidth * ratio);
  canvas.height = Math.round(canvas.clientHeight * ratio);
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  const pixels = new Uint32Array(image.data.buffer);
  const { scale, ox, oy } = toScreen(canvas);
  // bigger points for smaller maps: 5 px at 10 files, 2 px from 10,000 on
  const size = Math.round(ratio * Math.max(2, Math.min(6, 6 - Math.log10(mapState.xs.length))));
  const [width, height] = [canvas.width, canvas.height];
  let drawn = 0;
  for (const greyPass of [1, 0]) {
    for (let i = 0; i < mapState.xs.length; i++) {
      if (mapState.grey[i] !== greyPass) continue;
      const px = Math.round(ox + (mapState.xs[i] - mapState.centreX) * scale);
      const py = Math.round(oy - (mapState.ys[i] - mapState.centreY) * scale);
      if (px < 0 || py < 0 || px + size > width || py + size > height) continue;
      const colour = mapState.colours[i];
      for (let dy = 0; dy < size; dy++) {
        const row = (py + dy) * width + px;
        for (let dx = 0; dx < size; dx++) pixels[row + dx] = colour;
      }
      drawn++;
    }
  }
  context.putImageData(image, 0, 0);
  // the last search's hits and the selection, ringed on top
  const keys = new Set(searchHits);
  const ring = (i, colour, radius) => {
    context.beginPath();
    context.arc(ox + (mapState.xs[i] - mapState.centreX) * scale + size / 2, oy - (mapState.ys[i] - mapState.centreY) * scale + size / 2, radius * ratio, 0, 2 * Math.PI);
    context.strokeStyle = colour;
    context.lineWidth = 2 * ratio;
    context.stroke();
  };
  let hits = 0;
  if (keys.size) {
    mapState.data.keys.forEach((key, i) => { if (keys.has(key)) { ring(i, MAP_HIT, 6); hits++; } });
  }
  for (const i of mapState.selected) ring(i, "#2f6fde", 4);
  canvas.dataset.points = String(drawn);
  canvas.dataset.hits = String(hits);
  return performance.now() - started;
}

// The point nearest a pointer event, within PICK_PIXELS; -1 if none.
function pointAt(event) {
  const canvas = $("map-canvas");
  const ratio = window.devicePixelRatio || 1;
  const bounds = canvas.getBoundingClientRect();
  const { scale, ox, oy } = toScreen(canvas);
  const mx = (event.clientX - bounds.left) * ratio;
  const my = (event.clientY - bounds.top) * ratio;
  let best = -1;
  let bestDistance = (PICK_PIXELS * ratio) ** 2;
  for (let i = 0; i < mapState.xs.length; i++) {
    const dx = ox + (mapState.xs[i] - mapState.centreX) * scale - mx;
    const dy = oy - (mapState.ys[i] - mapState.centreY) * scale - my;
    const distance = dx * dx + dy * dy;
    if (distance < bestDistance) { bestDistance = distance; best = i; }
  }
  return best;
}

function mapPosition(event) {
  const canvas = $("map-canvas");
  const ratio = window.devicePixelRatio || 1;
  const bounds = canvas.getBoundingClientRect();
  const { scale, ox, oy } = toScreen(canvas);
  return {
    x: ((event.clientX - bounds.left) * ratio - ox) / scale + mapState.centreX,
    y: -((event.clientY - bounds.top) * ratio - oy) / scale + mapState.centreY,
  };
}

function playPoint(i) {
  const data = mapState.data;
  const audio = $("map-player");
  audio.src = `/api/audio/${data.keys[i]}`;
  audio.dataset.key = data.keys[i];
  $("map-playing").replaceChildren(element("b", {}, data.paths[i]), " ",
    element("button", { type: "button", onclick: () => searchFromMap([i]) }, "More like this"));
  audio.play().catch(() => { /* the browser may refuse autoplay: the controls are there */ });
}

function selectBox(from, to) {
  const [x0, x1] = [Math.min(from.x, to.x), Math.max(from.x, to.x)];
  const [y0, y1] = [Math.min(from.y, to.y), Math.max(from.y, to.y)];
  const chosen = [];
  for (let i = 0; i < mapState.xs.length; i++) {
    if (mapState.xs[i] >= x0 && mapState.xs[i] <= x1 && mapState.ys[i] >= y0 && mapState.ys[i] <= y1) chosen.push(i);
  }
  mapState.selected = chosen;
  const data = mapState.data;
  const shown = chosen.slice(0, 200);
  $("map-selection").hidden = chosen.length === 0;
  $("map-selection-title").textContent = `${chosen.length.toLocaleString()} files selected${chosen.length > shown.length ? ` (the first ${shown.length} listed)` : ""}`;
  $("map-selected").replaceChildren(...shown.map((i) => element("li", {},
    element("button", { type: "button", title: "play", onclick: () => playPoint(i) }, "▶"), " ", element("span", { class: "path" }, data.paths[i]))));
  drawMap();
}

// A search from map points: like these files (at most MAX_EXAMPLES, those nearest the
// selection's middle).
const MAX_EXAMPLES = 20;
function searchFromMap(indices) {
  const mx = indices.reduce((sum, i) => sum + mapState.xs[i], 0) / indices.length;
  const my = indices.reduce((sum, i) => sum + mapState.ys[i], 0) / indices.length;
  const nearest = [...indices].sort((a, b) =>
    ((mapState.xs[a] - mx) ** 2 + (mapState.ys[a] - my) ** 2) - ((mapState.xs[b] - mx) ** 2 + (mapState.ys[b] - my) ** 2));
  queryFile = null;
  $("query-ref").value = "";
  clearExamples();
  for (const i of nearest.slice(0, MAX_EXAMPLES)) examples.like.push({ key: mapState.data.keys[i], path: mapState.data.paths[i] });
  showExamples();
  show("search");
  search();
}

function setUpMap() {
  const canvas = $("map-canvas");
  const box = $("map-box");
  canvas.addEventListener("mousedown", (event) => {
    mapState.drag = { startX: event.clientX, startY: event.clientY, from: mapPosition(event), select: event.shiftKey, centre: [mapState.centreX, mapState.centreY], moved: false };
  });
  window.addEventListener("mousemove", (event) => {
    const drag = mapState.drag;
    if (!mapState.data) return;
    if (!drag) {
      if (event.target !== canvas) return;
      const i = pointAt(event);
      const tip = $("map-tip");
      tip.hidden = i < 0;
      if (i >= 0) {
        const bounds = canvas.getBoundingClientRect();
        tip.textContent = mapState.data.paths[i];
        tip.style.left = `${event.clientX - bounds.left + 12}px`;
        tip.style.top = `${event.clientY - bounds.top + 12}px`;
      }
      return;
    }
    drag.moved = drag.moved || Math.abs(event.clientX - drag.startX) + Math.abs(event.clientY - drag.startY) > 3;
    if (drag.select) {
      const bounds = canvas.getBoundingClientRect();
      box.hidden = false;
      box.style.left = `${Math.min(drag.startX, event.clientX) - bounds.left}px`;
      box.style.top = `${Math.min(drag.startY, event.clientY) - bounds.top}px`;
      box.style.width = `${Math.abs(event.clientX - drag.startX)}px`;
      box.style.height = `${Math.abs(event.clientY - drag.startY)}px`;
    } else if (drag.moved) {
      const { scale } = toScreen(canvas);
      const ratio = window.devicePixelRatio || 1;
      mapState.centreX = drag.centre[0] - (event.clientX - drag.startX) * ratio / scale;
      mapState.centreY = drag.centre[1] + (event.clientY - drag.startY) * ratio / scale;
      requestAnimationFrame(drawMap);
    }
  });
  window.addEventListener("mouseup", (event) => {
    const drag = mapState.drag;
    mapState.drag = null;
    if (!drag || !mapState.data) return;
    box.hidden = true;
    if (drag.select && drag.moved) selectBox(drag.from, mapPosition(event));
    else if (!drag.moved) {
      const i = pointAt(event);
      if (i >= 0) playPoint(i);
    }
  });
  canvas.addEventListener("wheel", (event) => {
    if (!mapState.data) return;
    event.preventDefault();
    const before = mapPosition(event);
    mapState.scale = Math.min(200, Math.max(0.5, mapState.scale * Math.exp(-event.deltaY * 0.0015)));
    const after = mapPosition(event);
    mapState.centreX += before.x - after.x;
    mapState.centreY += before.y - after.y;
    requestAnimationFrame(drawMap);
  }, { passive: false });
  $("map-colour").addEventListener("change", () => { colourBy($("map-colour").value); drawMap(); });
  $("map-reset").addEventListener("click", () => { Object.assign(mapState, { scale: 1, centreX: 0, centreY: 0 }); drawMap(); });
  $("map-search-selection").addEventListener("click", () => { if (mapState.selected.length) searchFromMap(mapState.selected); });
  window.addEventListener("resize", () => { if (mapState.data && !$("view-map").hidden) drawMap(); });
}

document.addEventListener("DOMContentLoaded", setUpMap);
