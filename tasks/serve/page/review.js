// The page's Review view: the files a label set's classifier is least sure of, then files unlike
// every labelled example, then a few confident ones to spot-check. Each plays in turn; one key
// press labels the file in focus (1-9: the set's labels in order) and moves on. Uses app.js's
// helpers ($, element, api, player).
"use strict";

const review = { name: "", items: [], labels: [], focus: 0 };

async function loadReviewSets() {
  try {
    const names = await api("/api/label-sets");
    const chosen = $("review-set").value;
    $("review-set").replaceChildren(...names.map((name) => element("option", { value: name }, name)));
    if (names.includes(chosen)) $("review-set").value = chosen;
    if (!names.length) $("review-status").textContent = "no label set yet: label some matches in the search view, or import a set";
  } catch (error) {
    $("review-status").textContent = `error: ${error.message}`;
  }
}

async function loadReviewQueue(event) {
  if (event) event.preventDefault();
  review.name = $("review-set").value;
  if (!review.name) return;
  $("review-status").textContent = "loading…";
  try {
    const [items, set] = await Promise.all([
      api(`/api/label-sets/${encodeURIComponent(review.name)}/review?size=20`),
      api(`/api/label-sets/${encodeURIComponent(review.name)}`),
    ]);
    review.items = items;
    review.labels = [...new Set([...Object.keys(set.counts), ...items.map((item) => item.best_label)])].sort();
    review.focus = 0;
    drawReviewQueue();
    focusReview(0, true);
    $("review-status").textContent = items.length
      ? `${items.length} files to hear · label set version ${set.version} · keys: ${review.labels.slice(0, 9).map((label, i) => `${i + 1} ${label}`).join(", ")}`
      : "nothing to review: every predicted file is labelled";
  } catch (error) {
    $("review-status").textContent = `error: ${error.message}`;
  }
}

function drawReviewQueue() {
  $("review-queue").replaceChildren(...review.items.map((item, i) => {
    const buttons = review.labels.slice(0, 9).map((label, n) =>
      element("button", { type: "button", title: `key ${n + 1}`, onclick: () => labelReviewed(i, label) }, `${n + 1} ${label}`));
    const sure = item.margin == null ? `p ${item.probability.toFixed(2)}` : `margin ${item.margin.toFixed(2)}`;
    return element("li", { class: `review-item${i === review.focus ? " focus" : ""}${item.given ? " done" : ""}`, "data-key": item.key, onclick: () => focusReview(i, false) },
      element("div", { class: "path" }, item.path),
      element("div", { class: "meta" }, `${item.reason} · best guess ${item.best_label} (${sure})`, item.given ? element("b", { class: "given" }, ` · labelled ${item.given}`) : ""),
      element("div", { class: "actions" }, ...buttons),
      player(item.audio_url));
  }));
}

function focusReview(i, play) {
  review.focus = Math.max(0, Math.min(review.items.length - 1, i));
  document.querySelectorAll("#review-queue .review-item").forEach((li, n) => li.classList.toggle("focus", n === review.focus));
  const li = document.querySelectorAll("#review-queue .review-item")[review.focus];
  if (!li) return;
  li.scrollIntoView({ block: "nearest" });
  if (play) li.querySelector("audio").play().catch(() => { /* the controls are there */ });
}

async function labelReviewed(i, label) {
  const item = review.items[i];
  try {
    const change = await api(`/api/label-sets/${encodeURIComponent(review.name)}/labels`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ label, files: [item.key], relabel: true }),
    });
    item.given = label;
    loadClassifier();
    $("review-status").textContent = `${item.path} labelled ${label} · label set version ${change.version}`;
    $("review-status").dataset.version = change.version ?? "";
  } catch (error) {
    $("review-status").textContent = `error: ${error.message}`;
    return;
  }
  drawReviewQueue();
  focusReview(i + 1, true);
}

document.addEventListener("keydown", (event) => {
  if ($("view-review").hidden || !review.items.length) return;
  if (["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName)) return;
  const digit = Number(event.key);
  if (Number.isInteger(digit) && digit >= 1 && digit <= Math.min(9, review.labels.length)) {
    event.preventDefault();
    labelReviewed(review.focus, review.labels[digit - 1]);
  } else if (event.key === "ArrowDown" || event.key === "j") {
    event.preventDefault();
    focusReview(review.focus + 1, true);
  } else if (event.key === "ArrowUp" || event.key === "k") {
    event.preventDefault();
    focusReview(review.focus - 1, true);
  } else if (event.key === " ") {
    event.preventDefault();
    const audio = document.querySelectorAll("#review-queue .review-item audio")[review.focus];
    if (audio) { if (audio.paused) audio.play().catch(() => {}); else audio.pause(); }
  }
});

// The classifier's macro-F1 over its trainings (cross-validated), the labels given since the
// last one, and the last retrain: before -> after. Asked again while a retrain runs.
let classifierPoll = null;
async function loadClassifier() {
  if (!review.name) return;
  clearTimeout(classifierPoll);
  try {
    const state = await api(`/api/label-sets/${encodeURIComponent(review.name)}/classifier`);
    drawF1History(state.history);
    const since = state.labels_since_training == null ? "no classifier yet" : `${state.labels_since_training} labels since the last training${state.retrain_after ? ` (retrains after ${state.retrain_after})` : ""}`;
    const retrain = state.retrain;
    let last = "";
    if (retrain.status === "running") last = " · retraining…";
    else if (retrain.status === "failed") last = ` · the retrain failed: ${retrain.error}`;
    else if (retrain.status === "done") last = ` · retrained: macro-F1 ${retrain.before_macro_f1 == null ? "–" : retrain.before_macro_f1.toFixed(3)} → ${retrain.after_macro_f1.toFixed(3)}, ${retrain.predicted} files labelled`;
    $("classifier-status").textContent = since + last;
    $("classifier-status").dataset.retrain = retrain.status;
    if (retrain.status === "running") classifierPoll = setTimeout(loadClassifier, 1000);
  } catch (error) {
    $("classifier-status").textContent = `error: ${error.message}`;
  }
}

function drawF1History(history) {
  const chart = $("f1-history");
  chart.replaceChildren();
  if (!history.length) return;
  const [width, height, pad] = [600, 120, 14];
  const x = (i) => pad + (history.length === 1 ? 0 : (i / (history.length - 1)) * (width - 2 * pad));
  const y = (v) => height - pad - v * (height - 2 * pad);
  const line = (key, cls) => svg("polyline", { class: cls, points: history.map((h, i) => `${x(i)},${y(h[key])}`).join(" ") });
  chart.append(line("majority_macro_f1", "baseline"), line("macro_f1", "f1"));
  history.forEach((h, i) => {
    const dot = svg("circle", { class: "f1-point", cx: x(i), cy: y(h.macro_f1), r: 4 });
    const title = svg("title", {});
    title.textContent = `${new Date(h.trained_at).toLocaleString()} · ${h.clips} labelled clips · macro-F1 ${h.macro_f1.toFixed(3)} (majority ${h.majority_macro_f1.toFixed(3)}) · ${h.algorithm}`;
    dot.append(title);
    chart.append(dot);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("review-form").addEventListener("submit", loadReviewQueue);
  $("review-form").addEventListener("submit", () => setTimeout(loadClassifier, 0));
  $("retrain").addEventListener("click", async () => {
    if (!review.name) return;
    try {
      await api(`/api/label-sets/${encodeURIComponent(review.name)}/train`, { method: "POST" });
    } catch (error) {
      $("classifier-status").textContent = `error: ${error.message}`;
      return;
    }
    loadClassifier();
  });
});
