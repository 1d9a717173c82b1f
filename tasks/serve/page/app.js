// The page of `audio-embeddings serve`: search by sound, listen, and review anomaly verdicts.
// Plain DOM, no build step: every request goes to the same origin's /api.
"use strict";

const $ = (id) => document.getElementById(id);
let queryFile = null;
// Examples a search grows by ("More like this" / "Less like this"): catalogue files {key, path}.
const examples = { like: [], unlike: [] };

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    $("login").hidden = false;
    throw new Error("log in first (API key)");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return response.status === 204 ? null : response.json();
}

function seconds(value) {
  return value == null ? "" : `${value.toFixed(1)} s`;
}

function scoreBar(fraction, mark) {
  const bar = element("span", { class: "bar" }, element("span", { style: `width:${Math.max(0, Math.min(1, fraction)) * 100}%` }));
  if (mark != null) bar.append(element("i", { style: `left:${Math.min(1, mark) * 100}%` }));
  return bar;
}

function player(url, start) {
  // A media fragment starts playback at `start`; the server honours the byte ranges seeking needs.
  const audio = element("audio", { controls: "", preload: "metadata", src: start ? `${url}#t=${start}` : url });
  return audio;
}

function options() {
  const form = new URLSearchParams();
  form.set("top", $("top").value);
  if ($("path-prefix").value.trim()) form.set("path_prefix", $("path-prefix").value.trim());
  if ($("tag").value.trim()) form.append("tag", $("tag").value.trim());
  if ($("segments").checked) form.set("segments", "true");
  for (const facet of document.querySelectorAll("#facets select")) {
    if (facet.value) form.append("predicted", `${facet.dataset.labelSet}=${facet.value}`);
  }
  return form;
}

// The label set being labelled from the hits: its name, version and labels (key -> label).
const labelling = { name: "", version: null, labels: {}, counts: {} };
let lastAnswer = null;

async function loadLabelSet() {
  labelling.name = $("label-set").value.trim();
  if (!labelling.name) {
    Object.assign(labelling, { version: null, labels: {}, counts: {} });
    $("label-set-status").textContent = "";
  } else {
    try {
      const set = await api(`/api/label-sets/${encodeURIComponent(labelling.name)}`);
      Object.assign(labelling, { version: set.version, labels: set.labels, counts: set.counts });
      const counts = Object.entries(set.counts).map(([label, n]) => `${label} ${n}`).join(", ");
      $("label-set-status").textContent = set.version == null ? `${labelling.name}: a new label set, made by its first label` : `${labelling.name}: version ${set.version} · ${counts || "no labels"}`;
      $("label-set-status").dataset.version = set.version ?? "";
    } catch (error) {
      $("label-set-status").textContent = `error: ${error.message}`;
    }
  }
  if (lastAnswer) showResults(lastAnswer);
}

async function loadLabelSetNames() {
  try {
    const names = await api("/api/label-sets");
    $("label-set-names").replaceChildren(...names.map((name) => element("option", { value: name })));
  } catch (_) { /* shown when the user acts */ }
}

async function changeLabel(method, hit, label) {
  const name = encodeURIComponent(labelling.name);
  try {
    if (method === "POST") {
      await api(`/api/label-sets/${name}/labels`, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify({ label, files: [hit.key] }) });
    } else {
      await api(`/api/label-sets/${name}/labels?file=${encodeURIComponent(hit.key)}`, { method });
    }
  } catch (error) {
    $("label-set-status").textContent = `error: ${error.message}`;
    return;
  }
  loadLabelSetNames();
  await loadLabelSet();
}

// On a hit: its label in the set being labelled (× takes it out), or a box to give one.
function labelControl(hit) {
  if (!labelling.name) return element("span");
  const given = labelling.labels[hit.key];
  if (given) {
    return element("span", { class: "chip labelled", title: `labelled ${given} in ${labelling.name}` }, `${labelling.name}=${given} `,
      element("button", { type: "button", title: "take the label back", onclick: () => changeLabel("DELETE", hit) }, "×"));
  }
  const input = element("input", { type: "text", class: "label-value", list: "label-values", placeholder: "label", size: "10" });
  const give = () => { if (input.value.trim()) changeLabel("POST", hit, input.value.trim()); };
  input.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); give(); } });
  return element("span", { class: "label-form" }, input, element("button", { type: "button", class: "give-label", onclick: give }, "Label"));
}

function showResults(answer) {
  lastAnswer = answer;
  searchHits = answer.hits.map((hit) => hit.key);
  $("label-values").replaceChildren(...Object.keys(labelling.counts).map((label) => element("option", { value: label })));
  const list = $("results");
  list.replaceChildren();
  $("search-status").textContent = `${answer.hits.length} matches for ${answer.query} · query vector ${answer.embed_ms} ms, index ${answer.search_ms} ms`;
  answer.hits.forEach((hit, i) => {
    const where = hit.start_seconds != null ? ` · ${seconds(hit.start_seconds)} – ${seconds(hit.end_seconds)}` : "";
    const chips = element("span", { class: "chips" }, ...hit.tags.map((tag) =>
      element("span", { class: "chip", title: "filter by this AudioSet tag", onclick: () => { $("tag").value = tag; search(); } }, tag)),
      ...(hit.predicted_labels || []).map((value) => {
        const [labelSet, label] = value.split("=");
        return element("span", { class: "chip predicted", title: `predicted ${labelSet}: filter by it`, onclick: () => { facetSelect(labelSet).value = label; search(); } }, value);
      }));
    list.append(element("li", { class: "hit", "data-key": hit.key, ...(hit.start_seconds != null ? { "data-span": `${hit.start_seconds}-${hit.end_seconds}` } : {}) },
      element("span", { class: "rank" }, `${i + 1}`),
      element("div", {},
        element("div", { class: "path" }, hit.path),
        element("div", { class: "meta" }, `${seconds(hit.duration_seconds)}${where}`, " ", chips, " ", labelControl(hit))),
      element("div", { class: "actions" },
        element("span", { class: "score", title: "cosine similarity" }, scoreBar(hit.score), hit.score.toFixed(3)),
        element("button", { type: "button", class: "more", title: "add to the query: the matches should sound like this too", onclick: () => addExample("like", hit) }, "More like this"),
        element("button", { type: "button", class: "less", title: "add to the query: the matches should not sound like this", onclick: () => addExample("unlike", hit) }, "Less like this")),
      spectrogram(hit.key, hit.start_seconds, hit.end_seconds == null ? null : hit.end_seconds - hit.start_seconds),
      player(hit.audio_url, hit.start_seconds)));
  });
}

// Plasma-like colours for 0 (quiet) .. 255 (loudest), interpolated once.
const PALETTE = (() => {
  const stops = [[13, 8, 135], [126, 3, 168], [204, 71, 120], [248, 149, 64], [240, 249, 33]];
  const table = new Uint8ClampedArray(256 * 3);
  for (let v = 0; v < 256; v++) {
    const x = (v / 255) * (stops.length - 1);
    const i = Math.min(Math.floor(x), stops.length - 2);
    for (let k = 0; k < 3; k++) table[v * 3 + k] = stops[i][k] + (stops[i + 1][k] - stops[i][k]) * (x - i);
  }
  return table;
})();

// A file's log-mel spectrogram (drawn from /api/spectrogram: 64 bands, low at the bottom), with
// the span [start, start + length) s marked: a matched segment, or an anomaly's worst window.
function spectrogram(key, start, length) {
  const canvas = element("canvas", { width: 256, height: 64 });
  const marker = element("b", { class: "marker" });
  marker.hidden = start == null;
  const box = element("div", { class: "spectro", title: "log-mel spectrogram: what the model hears" }, canvas, marker);
  api(`/api/spectrogram/${key}`).then((picture) => {
    const values = Uint8Array.from(atob(picture.values), (c) => c.charCodeAt(0));
    canvas.width = picture.columns;
    canvas.height = picture.bands;
    const context = canvas.getContext("2d");
    const image = context.createImageData(picture.columns, picture.bands);
    for (let band = 0; band < picture.bands; band++) {
      for (let column = 0; column < picture.columns; column++) {
        const value = values[band * picture.columns + column];
        const at = ((picture.bands - 1 - band) * picture.columns + column) * 4;
        image.data.set([PALETTE[value * 3], PALETTE[value * 3 + 1], PALETTE[value * 3 + 2], 255], at);
      }
    }
    context.putImageData(image, 0, 0);
    box.dataset.drawn = "true";
    if (start != null && picture.seconds > 0) {
      marker.style.left = `${Math.min(1, start / picture.seconds) * 100}%`;
      marker.style.width = `${Math.min(1, (length || 0) / picture.seconds) * 100}%`;
    }
  }).catch((error) => {
    box.classList.add("unavailable");
    box.title = `no spectrogram: ${error.message}`;
  });
  return box;
}

function addExample(kind, hit) {
  for (const list of Object.values(examples)) {
    const at = list.findIndex((e) => e.key === hit.key);
    if (at >= 0) list.splice(at, 1);
  }
  examples[kind].push({ key: hit.key, path: hit.path });
  showExamples();
  search();
}

function showExamples() {
  const chips = [];
  for (const kind of ["like", "unlike"]) {
    examples[kind].forEach((example, i) => chips.push(element("span", { class: `chip example ${kind}`, "data-key": example.key },
      `${kind === "like" ? "like" : "unlike"} ${example.path} `,
      element("button", { type: "button", title: "take it out of the query", onclick: () => { examples[kind].splice(i, 1); showExamples(); search(); } }, "×"))));
  }
  if (chips.length) chips.push(element("button", { type: "button", class: "link", onclick: () => { clearExamples(); search(); } }, "clear examples"));
  $("examples").replaceChildren(...chips);
  $("examples").hidden = chips.length === 0;
}

function clearExamples() {
  examples.like.length = 0;
  examples.unlike.length = 0;
  showExamples();
}

async function search(event) {
  if (event) event.preventDefault();
  const form = options();
  for (const kind of ["like", "unlike"]) for (const example of examples[kind]) form.append(kind, example.key);
  $("search-status").textContent = "searching…";
  try {
    let answer;
    if (queryFile) {
      const body = new FormData();
      body.set("file", queryFile);
      for (const [name, value] of form) body.append(name, value);
      answer = await api("/api/search", { method: "POST", body });
    } else if ($("query-ref").value.trim()) {
      const reference = $("query-ref").value.trim();
      form.set(/^[0-9a-f]{64}$/.test(reference) ? "key" : (/^(az|https?):\/\//.test(reference) ? "url" : "path"), reference);
      answer = await api(`/api/search?${form}`);
    } else if (examples.like.length) {
      answer = await api(`/api/search?${form}`);
    } else {
      $("search-status").textContent = "drop or pick an audio file, or name a file of the catalogue";
      return;
    }
    showResults(answer);
  } catch (error) {
    $("search-status").textContent = `error: ${error.message}`;
    $("search-status").classList.add("error");
    return;
  }
  $("search-status").classList.remove("error");
}

function useFile(file) {
  queryFile = file;
  clearExamples();
  $("query-ref").value = "";
  $("drop-hint").replaceChildren("Query: ", element("b", {}, file.name), " · drop or ", element("label", { for: "query-file", class: "link" }, "pick"), " another");
  const preview = $("query-player");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  search();
}

async function loadAnomalies() {
  const body = $("anomalies").querySelector("tbody");
  $("anomaly-status").textContent = "loading…";
  try {
    const only = $("only-anomalies").checked ? "&only_anomalies=true" : "";
    const rows = await api(`/api/anomalies?limit=200${only}`);
    body.replaceChildren(...rows.map((row) => {
      const timeline = element("div", { class: "timeline", title: "where the worst window is in the clip" }, element("b"));
      const audio = player(row.audio_url, row.worst_window_start_seconds);
      audio.addEventListener("loadedmetadata", () => {
        const start = row.worst_window_start_seconds || 0;
        timeline.firstChild.style.left = `${Math.min(1, start / audio.duration) * 100}%`;
        timeline.firstChild.style.width = `${Math.min(1, (row.window_seconds || 0) / audio.duration) * 100}%`;
      });
      const picture = row.score == null ? timeline : element("div", {}, spectrogram(row.key, row.worst_window_start_seconds || 0, row.window_seconds), timeline);
      return element("tr", { class: row.verdict },
        element("td", {}, element("span", { class: `verdict ${row.verdict}` }, row.verdict)),
        element("td", { class: "path" }, row.path),
        element("td", {}, row.group || ""),
        element("td", {}, row.score == null ? "no sound" : element("span", { class: "score" }, scoreBar(row.score / (2 * row.threshold), 0.5), `${row.score.toFixed(3)} / ${row.threshold.toFixed(3)}`)),
        element("td", {}, row.window_seconds ? `${seconds(row.worst_window_start_seconds)} – ${seconds(row.worst_window_start_seconds + row.window_seconds)}` : `from ${seconds(row.worst_window_start_seconds)}`, picture),
        element("td", {}, audio));
    }));
    const anomalous = rows.filter((row) => row.verdict === "anomaly").length;
    $("anomaly-status").textContent = rows.length ? `${rows.length} clips, ${anomalous} anomalous (newest verdict per clip; bar mark = threshold)` : "no anomaly scan results yet";
  } catch (error) {
    $("anomaly-status").textContent = `error: ${error.message}`;
  }
}

const SVG = "http://www.w3.org/2000/svg";
const MACHINE_COLOURS = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2"];

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

async function loadTrend() {
  const params = new URLSearchParams();
  const chosen = $("trend-machine").value;
  if (chosen) params.set("machine", chosen);
  if ($("trend-since").value) params.set("since", `${$("trend-since").value}T00:00:00`);
  try {
    const trend = await api(`/api/anomalies/trend?${params}`);
    $("trend-machine").replaceChildren(element("option", { value: "" }, "all machines"),
      ...trend.machines.map((name) => element("option", { value: name }, name || "(no machine)")));
    $("trend-machine").value = chosen;
    drawTrend(trend.points, trend.machines);
  } catch (error) {
    $("trend-status").textContent = `error: ${error.message}`;
  }
}

// Score against recording time: one colour per machine, its threshold as a step line (each
// point keeps the threshold it was judged against), anomalies filled red, silent clips as ticks
// on the time axis. A click plays the clip from its worst window.
function drawTrend(points, machines) {
  const chart = $("trend");
  const [width, height, left, right, top, bottom] = [900, 240, 48, 12, 12, 28];
  chart.replaceChildren();
  if (!points.length) {
    $("trend-status").textContent = "no scanned clips in this range";
    return;
  }
  const times = points.map((p) => Date.parse(p.at));
  let [first, last] = [Math.min(...times), Math.max(...times)];
  if (first === last) { first -= 3600e3; last += 3600e3; }
  const highest = Math.max(...points.map((p) => Math.max(p.score ?? 0, p.threshold))) * 1.1 || 1;
  const x = (t) => left + ((t - first) / (last - first)) * (width - left - right);
  const y = (v) => height - bottom - (v / highest) * (height - top - bottom);
  chart.append(svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }));
  for (const [value, label] of [[0, "0"], [highest / 1.1, (highest / 1.1).toFixed(2)]]) {
    const text = svg("text", { class: "tick-label", x: left - 6, y: y(value) + 4, "text-anchor": "end" });
    text.textContent = label;
    chart.append(text);
  }
  for (const [t, anchor] of [[first, "start"], [last, "end"]]) {
    const text = svg("text", { class: "tick-label", x: x(t), y: height - 8, "text-anchor": anchor });
    text.textContent = new Date(t).toLocaleString();
    chart.append(text);
  }
  machines.forEach((machine, i) => {
    const own = points.filter((p) => p.machine === machine);
    if (!own.length) return;
    const colour = MACHINE_COLOURS[i % MACHINE_COLOURS.length];
    let step = "";
    own.forEach((p, j) => {
      const [px, py] = [x(Date.parse(p.at)), y(p.threshold)];
      step += j === 0 ? `M${left},${py} H${px}` : ` V${py} H${px}`;
    });
    step += ` H${width - right}`;
    chart.append(svg("path", { class: "threshold", d: step, stroke: colour, "data-machine": machine }));
    for (const p of own) {
      const px = x(Date.parse(p.at));
      const mark = p.score == null
        ? svg("rect", { class: "point silent", x: px - 1.5, y: height - bottom - 10, width: 3, height: 10, fill: colour })
        : svg("circle", { class: `point ${p.verdict}`, cx: px, cy: y(p.score), r: 5, stroke: colour });
      const title = svg("title", {});
      title.textContent = `${p.path} · ${machine || "(no machine)"} · ${new Date(p.at).toLocaleString()} · ${p.score == null ? "silent" : `${p.score.toFixed(3)} / ${p.threshold.toFixed(3)}`}`;
      mark.append(title);
      mark.dataset.path = p.path;
      mark.addEventListener("click", () => playWorstWindow(p));
      chart.append(mark);
    }
  });
  const anomalous = points.filter((p) => p.verdict === "anomaly").length;
  $("trend-status").textContent = `${points.length} clips on ${new Set(points.map((p) => p.machine)).size} machine(s), ${anomalous} anomalous · click a point to hear its worst window`;
}

function playWorstWindow(point) {
  const audio = $("trend-player");
  const start = point.worst_window_start_seconds || 0;
  audio.src = start ? `${point.audio_url}#t=${start}` : point.audio_url;
  audio.title = point.path;
  audio.play().catch(() => {});
}

// The pass runs on the service in the background: ask, and ask again while it says "running".
// Only the newest question may fill the view (an older one may still be waiting).
let duplicatesAsked = 0;
async function loadDuplicates(event) {
  if (event) event.preventDefault();
  const ask = ++duplicatesAsked;
  const threshold = $("duplicates-threshold").value || "0.98";
  $("duplicates-status").textContent = "comparing…";
  try {
    let answer;
    for (;;) {
      const response = await fetch(`/api/duplicates?threshold=${encodeURIComponent(threshold)}&isolated=20`, { credentials: "same-origin" });
      answer = await response.json();
      if (ask !== duplicatesAsked) return;
      if (response.status === 401) { $("login").hidden = false; return; }
      if (response.status !== 202) {
        if (!response.ok) throw new Error(answer.error || answer.detail || response.statusText);
        break;
      }
      $("duplicates-status").textContent = `comparing… ${answer.files.toLocaleString()} files so far`;
      await new Promise((done) => setTimeout(done, 1000));
      if (ask !== duplicatesAsked) return;
    }
    $("duplicate-groups").replaceChildren(...answer.groups.map((group) =>
      element("li", { class: "group" },
        element("div", { class: "meta" }, `${group.paths.length} files · weakest link ${group.weakest.toFixed(4)}`),
        ...group.paths.map((path, i) => element("div", { class: "member" }, element("span", { class: "path" }, path), player(group.audio_urls[i]))))));
    $("isolated").querySelector("tbody").replaceChildren(...answer.isolated.map((file) =>
      element("tr", {},
        element("td", { class: "path" }, file.path),
        element("td", {}, file.nearest_path),
        element("td", {}, file.similarity.toFixed(4)),
        element("td", {}, player(file.audio_url)))));
    $("duplicates-status").textContent = `${answer.groups.length} groups of near-duplicates among ${answer.files.toLocaleString()} files (cosine ≥ ${answer.threshold}); the ${answer.isolated.length} files least like any other below`;
  } catch (error) {
    $("duplicates-status").textContent = `error: ${error.message}`;
  }
}

function show(view) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === view);
  $("view-search").hidden = view !== "search";
  $("view-anomalies").hidden = view !== "anomalies";
  $("view-duplicates").hidden = view !== "duplicates";
  $("view-map").hidden = view !== "map";
  $("view-review").hidden = view !== "review";
  if (view === "review") loadReviewSets();
  if (view === "duplicates") loadDuplicates();
  if (view === "map") loadMap();
  if (view === "anomalies") { loadAnomalies(); loadTrend(); }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
  $("search-form").addEventListener("submit", search);
  $("query-file").addEventListener("change", () => { if ($("query-file").files[0]) useFile($("query-file").files[0]); });
  $("query-ref").addEventListener("input", () => { queryFile = null; clearExamples(); });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files[0]) useFile(event.dataTransfer.files[0]);
  });
  $("only-anomalies").addEventListener("change", loadAnomalies);
  $("refresh-anomalies").addEventListener("click", () => { loadAnomalies(); loadTrend(); });
  $("trend-machine").addEventListener("change", loadTrend);
  $("duplicates-form").addEventListener("submit", loadDuplicates);
  $("label-set").addEventListener("change", loadLabelSet);
  $("trend-since").addEventListener("change", loadTrend);
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("/api/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ api_key: $("api-key").value }) });
      $("login").hidden = true;
      $("login-error").textContent = "";
      loadTags();
    } catch (error) {
      $("login-error").textContent = error.message;
    }
  });
  const fromHash = () => { if (["#search", "#anomalies", "#map", "#duplicates", "#review"].includes(location.hash)) show(location.hash.slice(1)); };
  window.addEventListener("hashchange", fromHash);
  fromHash();
  loadTags();
  loadFacets();
  loadLabelSetNames();
  fetch("/healthz").then((r) => r.json()).then((health) => {
    $("health").textContent = `${health.files_indexed.toLocaleString()} files indexed · ${health.model} on ${health.device}${health.official_checkpoint ? "" : " · random/unofficial weights"}`;
  }).catch(() => {});
});

function facetSelect(labelSet) {
  return document.querySelector(`#facets select[data-label-set="${CSS.escape(labelSet)}"]`);
}

async function loadFacets() {
  try {
    const facets = await api("/api/predicted-labels");
    $("facets").replaceChildren(...Object.entries(facets).map(([labelSet, counts]) =>
      element("label", { title: `labels predicted by the ${labelSet} classifier` }, `${labelSet} (predicted) `,
        element("select", { "data-label-set": labelSet, id: `facet-${labelSet}` },
          element("option", { value: "" }, "any"),
          ...Object.entries(counts).map(([label, count]) => element("option", { value: label }, `${label} (${count.toLocaleString()})`))))));
  } catch (_) { /* no predicted labels yet */ }
}

async function loadTags() {
  try {
    const tags = await api("/api/tags");
    $("tags").replaceChildren(...tags.map((tag) => element("option", { value: tag })));
  } catch (_) { /* shown when the user acts */ }
}
