// Drawing: each view is a function of the page's state (page.js), written into its section
// with plain DOM, hand-written SVG and a canvas. Tokens of the main sentence carry data-tok
// (tokenKeys) so that hovering one highlights it in every view.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const STEP_W = 44;  // px per step column: the step strip, the curve and the heatmap line up
const UNIT_H = 7;   // px per unit row of the heatmap
const CURVE_H = 90;
const COLORS = ["#1b7837", "#c51b7d", "#2166ac", "#e08214", "#542788", "#8c510a"];

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "style" && typeof v === "object") Object.assign(node.style, v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function clear(id) { const node = document.getElementById(id); node.replaceChildren(); return node; }

// activation in [-1, 1] -> white..red (+) or white..blue (-), as `seqlab inspect` draws it
function heat(a) {
  const v = Math.max(-1, Math.min(1, a || 0));
  const fade = Math.round(255 * (1 - Math.abs(v)));
  return v >= 0 ? `rgb(255,${fade},${fade})` : `rgb(${fade},${fade},255)`;
}

function shown(token) { return token.replace(/^\u2581/, "").replace(/\n/g, "\u21b5").replace(/ /g, "\u2423") || "\u2423"; }

function pct(p) { return (100 * p).toFixed(1) + "%"; }

// A token's key across views: its text and which occurrence of that text it is ("not#0").
// Models may split the sentence differently (words, characters, subwords), so a position
// would light unrelated tokens in another model's view; a key lights only the same token.
const tokenKeyCache = new WeakMap();
function tokenKeys(tokens) {
  if (!tokenKeyCache.has(tokens)) {
    const seen = new Map();
    tokenKeyCache.set(tokens, tokens.map((t) => {
      const word = shown(t).toLowerCase(), k = seen.get(word) || 0;
      seen.set(word, k + 1);
      return `${word}#${k}`;
    }));
  }
  return tokenKeyCache.get(tokens);
}

function tokenSpan(tokens, i, attrs = {}) {
  return el("span", { class: "tok", "data-tok": tokenKeys(tokens)[i], ...attrs, text: shown(tokens[i]) });
}

// -- bag of words --------------------------------------------------------------------------
function drawBow(state) {
  const table = clear("bow-table");
  const a = bagTokens(state.text), b = bagTokens(state.textB);
  const count = (tokens) => tokens.reduce((m, t) => m.set(t, (m.get(t) || 0) + 1), new Map());
  const ca = count(a), cb = count(b);
  const vocab = [...new Set([...a, ...b])].sort();
  table.append(el("tr", {}, el("th", { text: "sentence" }), ...vocab.map((w) => el("th", { class: "word", text: w }))));
  for (const [name, text, counts] of [["A", state.text, ca], ["B", state.textB, cb]]) {
    table.append(el("tr", { class: "bow-row" }, el("th", { class: "sentence", title: text, text: name }),
      ...vocab.map((w) => el("td", { class: counts.get(w) ? "on" : "", text: String(counts.get(w) || 0) }))));
  }
  const same = vocab.every((w) => (ca.get(w) || 0) === (cb.get(w) || 0));
  const flag = document.getElementById("bow-flag");
  flag.className = same ? "same" : "";
  flag.textContent = same ? "Identical vectors: a bag of words cannot tell these two sentences apart."
    : "The two vectors differ.";
}

// -- side by side --------------------------------------------------------------------------
function drawSide(state) {
  const table = clear("side-table");
  table.append(el("tr", {}, ...["model", "family", "word order it sees", "test accuracy", "A", "B"].map(
    (h) => el("th", { text: h }))));
  for (const m of state.classifiers) {
    const doc = state.docs[m.name];
    const preds = [doc && doc.outputs.prediction, state.predictions[m.name]];
    const acc = m.metrics && m.metrics.accuracy !== undefined
      ? `${(100 * m.metrics.accuracy).toFixed(1)}%${m.metrics_split === "test" ? "" : " (" + m.metrics_split + ")"}` : "–";
    const cell = (p) => {
      if (!p) return el("td", { text: "…" });
      const prob = p.probabilities[p.label];
      return el("td", { class: "pred" }, el("b", { text: p.label }), " ",
        el("span", { class: "bar" }, el("span", { style: { width: pct(prob) } })), " " + pct(prob));
    };
    table.append(el("tr", { class: "side-row", "data-model": m.name }, el("td", { text: m.name }),
      el("td", { text: m.family }), el("td", { class: "order", text: m.order_seen || "–" }), el("td", { text: acc }),
      cell(preds[0]), cell(preds[1])));
  }
}

// -- the unrolled RNN ----------------------------------------------------------------------
function unitOrder(layer, sorted) {
  const order = layer.shown.map((_, j) => j);
  if (!sorted) return order;
  const spread = order.map((j) => {
    const col = layer.values.map((row) => row[j]);
    const mean = col.reduce((s, v) => s + v, 0) / col.length;
    return col.reduce((s, v) => s + (v - mean) ** 2, 0) / col.length;
  });
  return order.sort((x, y) => spread[y] - spread[x]);
}

function layerScale(layer) {
  let top = 1e-6;
  for (const row of layer.values) for (const v of row) top = Math.max(top, Math.abs(v));
  return top;
}

function drawRnn(state, onUnit) {
  const doc = state.docs[state.rnnModel];
  const steps = clear("rnn-steps"), curve = clear("rnn-curve"), heatmap = document.getElementById("rnn-heatmap");
  clear("unit-strip");
  if (!doc || !doc.layers.length) { heatmap.width = heatmap.height = 0; return; }
  const layer = doc.layers.find((l) => l.name === state.rnnLayer) || doc.layers[doc.layers.length - 1];
  const T = doc.tokens.length, width = T * STEP_W;
  const out = doc.outputs, probs = out.steps ? out.steps.values : null;
  doc.tokens.forEach((_, i) => {
    const verdict = probs ? out.labels[probs[i].indexOf(Math.max(...probs[i]))] : "";
    steps.append(el("div", { class: "step", style: { width: STEP_W + "px" } },
      tokenSpan(doc.tokens, i), el("div", { class: "cellbox", title: `h${i + 1}`, text: `h${i + 1}` }),
      el("div", { class: "verdict", text: verdict })));
  });
  // the per-step verdict: p(label | prefix) for each label
  curve.setAttribute("width", width);
  curve.setAttribute("height", CURVE_H);
  const y = (p) => 6 + (1 - p) * (CURVE_H - 12);
  curve.append(el("svg:line", { x1: 0, x2: width, y1: y(0.5), y2: y(0.5), class: "half" }));
  if (probs) {
    out.labels.forEach((label, c) => {
      const pts = probs.map((row, i) => `${i * STEP_W + STEP_W / 2},${y(row[c])}`).join(" ");
      curve.append(el("svg:polyline", { points: pts, class: "line", stroke: COLORS[c % COLORS.length],
        "data-label": label }));
      probs.forEach((row, i) => curve.append(el("svg:circle", { cx: i * STEP_W + STEP_W / 2, cy: y(row[c]), r: 2.5,
        class: "pt", fill: COLORS[c % COLORS.length] }, el("svg:title", { text: `p(${label} | ${i + 1} tokens) = ${row[c].toFixed(3)}` }))));
      curve.append(el("svg:text", { x: 4, y: 12 + 11 * c, fill: COLORS[c % COLORS.length], class: "legend", text: label }));
    });
  }
  // units x time: one column per step, one row per unit, painted on a canvas (thousands of
  // cells: as SVG nodes they took most of an update's drawing time). The canvas carries its
  // grid in data attributes; clicks and the readout map a mouse position to (unit, step).
  const order = unitOrder(layer, state.sortUnits), scale = layerScale(layer);
  const rows = order.length;
  heatmap.width = width;
  heatmap.height = rows * UNIT_H;
  Object.assign(heatmap.dataset, { columns: T, rows, units: order.map((j) => layer.shown[j]).join(" ") });
  const ctx = heatmap.getContext("2d");
  ctx.clearRect(0, 0, heatmap.width, heatmap.height);
  order.forEach((j, row) => {
    for (let t = 0; t < T; t++) {
      ctx.fillStyle = heat(layer.values[t][j] / scale);
      ctx.fillRect(t * STEP_W, row * UNIT_H, STEP_W - 1, UNIT_H - 1);
    }
    if (layer.shown[j] === state.unit) {  // the picked unit's row, outlined
      ctx.strokeStyle = "#333";
      ctx.strokeRect(0.5, row * UNIT_H + 0.5, width - 1, UNIT_H - 2);
    }
  });
  const at = (event) => {
    const box = heatmap.getBoundingClientRect();  // CSS pixels; the grid is in canvas pixels
    const x = (event.clientX - box.left) * heatmap.width / box.width;
    const y = (event.clientY - box.top) * heatmap.height / box.height;
    const row = Math.floor(y / UNIT_H), t = Math.floor(x / STEP_W);
    return row >= 0 && row < rows && t >= 0 && t < T ? { j: order[row], t } : null;
  };
  heatmap.title = "click a row: colour the text by that unit";
  heatmap.onclick = (event) => {
    const cell = at(event);
    if (cell) onUnit(layer.shown[cell.j]);
  };
  heatmap.onmousemove = (event) => {  // one readout instead of a tooltip per cell
    const cell = at(event);
    if (!cell) return;
    document.getElementById("cell-info").textContent =
      `unit ${layer.shown[cell.j]}, step ${cell.t + 1} (${shown(doc.tokens[cell.t])}): ${layer.values[cell.t][cell.j]}`;
  };
  // Karpathy's neuron strip: the text coloured by the picked unit
  const j = layer.shown.indexOf(state.unit);
  const strip = document.getElementById("unit-strip");
  if (j < 0) { strip.textContent = "Click a row of the heatmap to colour the text by that unit."; return; }
  strip.append(el("span", { class: "label", text: `${layer.name}, unit ${state.unit}: ` }));
  doc.tokens.forEach((_, i) => strip.append(tokenSpan(doc.tokens, i, { style: { background: heat(layer.values[i][j] / scale) },
    title: String(layer.values[i][j]) })));
}

// -- cnn windows ---------------------------------------------------------------------------
function drawCnn(state) {
  const box = clear("cnn-windows");
  const doc = state.docs[state.cnnModel];
  if (!doc) return;
  const rows = [];
  for (const layer of doc.layers) {
    const windows = doc.views[`${layer.name} window`], best = doc.views[`${layer.name} max`];
    if (!windows) continue;
    windows.forEach(([start, end], f) => rows.push({ layer: layer.name, f, start, end, value: best[f] }));
  }
  rows.sort((a, b) => b.value - a.value);
  for (const r of rows.slice(0, 8)) {
    const line = el("div", { class: "window-row" }, el("span", { class: "label",
      text: `${r.layer}, filter ${r.f}: max ${r.value.toFixed(2)}` }));
    doc.tokens.forEach((_, i) => line.append(tokenSpan(doc.tokens, i, { class: "tok" + (i >= r.start && i <= r.end ? " win" : "") })));
    box.append(line);
  }
}

// -- attributions --------------------------------------------------------------------------
function drawWhy(state) {
  const box = clear("why-bars");
  for (const m of state.classifiers) {
    const doc = state.docs[m.name];
    if (!doc) continue;
    // until the attributions arrive (they follow the rest of the answer), the bars are flat
    const found = doc.outputs.attribution;
    const values = found ? found.values : doc.tokens.map(() => 0);
    const top = Math.max(1e-6, ...values.map(Math.abs));
    const row = el("div", { class: "why-row" }, el("span", { class: "label",
      text: found ? `${m.name} → ${found.label} (${found.method})` : `${m.name} → …` }));
    doc.tokens.forEach((_, i) => row.append(el("span", { class: "attr" },
      el("span", { class: "attr-bar " + (values[i] >= 0 ? "pos" : "neg"),
        style: { height: Math.round(28 * Math.abs(values[i]) / top) + "px" }, title: values[i].toFixed(4) }),
      tokenSpan(doc.tokens, i))));
    box.append(row);
  }
}

// -- tags ----------------------------------------------------------------------------------
function drawTags(state) {
  const row = clear("tag-row");
  const doc = state.docs[state.tagModel];
  if (!doc) return;
  doc.tokens.forEach((_, i) => row.append(el("span", { class: "tagged" }, tokenSpan(doc.tokens, i),
    el("span", { class: "tag", text: doc.outputs.tags[i] }),
    el("span", { class: "bar", title: pct(doc.outputs.confidence[i]) },
      el("span", { style: { width: pct(doc.outputs.confidence[i]) } })))));
}

// -- language model ------------------------------------------------------------------------
function drawLm(state) {
  const steps = clear("lm-steps");
  const doc = state.lmDoc;
  if (!doc) return;
  doc.tokens.forEach((t, i) => steps.append(el("div", { class: "step lm-step" },
    el("span", { class: "ch", text: shown(t) }),
    ...doc.outputs.next[i].map((g) => el("div", { class: "guess", style: { background: `rgba(27,120,55,${g.p})` },
      title: g.p.toFixed(3), text: shown(g.token) })))));
  document.getElementById("lm-sample").textContent = state.lmSample || "";
}

// -- translation ---------------------------------------------------------------------------
function drawMt(state) {
  const svg = clear("mt-attention"), list = clear("mt-nbest");
  const doc = state.mtDoc;
  if (!doc) return;
  const out = doc.outputs;
  out.n_best.forEach((h) => list.append(el("li", { text: `${h.translation}  (${h.score.toFixed(3)})` })));
  if (!out.attention) { svg.setAttribute("height", 0); return; }
  const { source, target, weights } = out.attention;
  const cw = 48, ch = 18, left = 90, topPad = 70;
  svg.setAttribute("width", left + cw * source.length + 10);
  svg.setAttribute("height", topPad + ch * target.length + 10);
  source.forEach((s, j) => svg.append(el("svg:text", { x: left + j * cw + cw / 2, y: topPad - 6, class: "src",
    transform: `rotate(-40 ${left + j * cw + cw / 2} ${topPad - 6})`, text: shown(s) })));
  target.forEach((t, i) => {
    svg.append(el("svg:text", { x: left - 6, y: topPad + i * ch + ch * 0.7, class: "tgt", text: shown(t) }));
    weights[i].forEach((w, j) => svg.append(el("svg:rect", { class: "att", x: left + j * cw, y: topPad + i * ch,
      width: cw - 1, height: ch - 1, fill: `rgba(33,102,172,${w})` }, el("svg:title", { text: `${shown(t)} ← ${shown(source[j])}: ${w}` }))));
  });
}

function selectOptions(id, names, value) {
  const select = document.getElementById(id);
  const same = select.options.length === names.length && names.every((n, i) => select.options[i].value === n);
  if (!same) select.replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
  if (value !== undefined) select.value = value;
}

const Views = { drawBow, drawSide, drawRnn, drawCnn, drawWhy, drawTags, drawLm, drawMt, selectOptions };
