// The page: one state object, filled from the server (api.js) and drawn by views.js. Typing
// updates it live (debounced); "save this view" writes the state, the styles and these
// scripts into one HTML file that draws the same view offline.
"use strict";

const DEBOUNCE_MS = 120;
const $ = (id) => document.getElementById(id);

const state = {
  models: [], classifiers: [], text: "", textB: "", docs: {}, predictions: {},
  rnnModel: null, rnnLayer: null, sortUnits: false, unit: null, cnnModel: null, tagModel: null,
  lmModel: null, lmText: "", lmDoc: null, lmSample: "", mtModel: null, mtText: "", mtDoc: null, timing: null,
};
let updates = 0;

function status(message, error = false) {
  $("status").textContent = message;
  $("status").className = error ? "error" : "";
}

function failed(e) {
  if (e instanceof Api.ApiError && e.status === 401) $("token-box").hidden = false;
  status(e.message || String(e), true);
}

const named = (role) => state.models.filter((m) => Api.roles(m)[role]).map((m) => m.name);
const neural = (m) => m.family !== "linear";

// -- drawing -------------------------------------------------------------------------------
function pickUnit(unit) {
  state.unit = unit;
  Views.drawRnn(state, pickUnit);
}

function draw() {
  const recurrent = state.classifiers.filter((m) => /^(rnn|lstm|gru)$/.test(m.family)).map((m) => m.name);
  const rnnChoices = recurrent.length ? recurrent : state.classifiers.filter(neural).map((m) => m.name);
  const cnns = state.classifiers.filter((m) => m.family === "cnn").map((m) => m.name);
  const show = { "side-view": state.classifiers.length, "why-view": state.classifiers.length,
    "rnn-view": rnnChoices.length, "cnn-view": cnns.length, "tag-view": named("tagger").length,
    "lm-view": named("lm").length, "mt-view": named("translator").length };
  for (const [id, on] of Object.entries(show)) $(id).hidden = !on;
  if (!rnnChoices.includes(state.rnnModel)) state.rnnModel = rnnChoices[0] || null;
  if (!cnns.includes(state.cnnModel)) state.cnnModel = cnns[0] || null;
  Views.selectOptions("rnn-model", rnnChoices, state.rnnModel);
  Views.selectOptions("cnn-model", cnns, state.cnnModel);
  Views.selectOptions("tag-model", named("tagger"), state.tagModel);
  Views.selectOptions("lm-model", named("lm"), state.lmModel);
  Views.selectOptions("mt-model", named("translator"), state.mtModel);
  const doc = state.docs[state.rnnModel];
  const layers = doc ? doc.layers.map((l) => l.name) : [];
  // the top layer; of a bidirectional one, the forward direction (it reads as the lecture draws)
  const top = layers.filter((n) => n.split(" ")[1] === String(layers.length && layers[layers.length - 1].split(" ")[1]));
  if (!layers.includes(state.rnnLayer)) state.rnnLayer = top.find((n) => n.endsWith("forward")) || top[0] || null;
  Views.selectOptions("rnn-layer", layers, state.rnnLayer);
  $("sort-units").checked = state.sortUnits;
  Views.drawBow(state);
  Views.drawSide(state);
  Views.drawRnn(state, pickUnit);
  Views.drawCnn(state);
  Views.drawWhy(state);
  Views.drawTags(state);
  Views.drawLm(state);
  Views.drawMt(state);
  if (state.timing) $("timing").textContent = `updated in ${state.timing.ms.toFixed(0)} ms (${state.timing.tokens} tokens)`;
  document.body.dataset.updates = String(++updates);
}

// -- the main sentence: every classifier and tagger reads it ---------------------------------
let mainRequest = 0;
const verdictsB = new Map();  // "model\ntext" -> sentence B's verdict
async function updateMain() {
  const id = ++mainRequest, start = performance.now();
  const text = state.text, textB = state.textB;
  const readers = [...state.classifiers.map((m) => m.name), ...named("tagger")];
  const docs = {}, predictions = {};
  try {
    if (text.trim()) {
      await Promise.all([
        // attributions (a backward pass each) are asked for after this answer is drawn
        ...readers.map(async (name) => { docs[name] = await Api.inspect(name, text, { attribution: false }); }),
        // sentence A's verdict comes with its inspect document; B only needs a prediction,
        // asked again only when B changed (typing in A does not wait for it)
        ...(textB.trim() ? state.classifiers.map(async (m) => {
          const key = `${m.name}\n${textB}`;
          if (!verdictsB.has(key)) verdictsB.set(key, (await Api.predict(m.name, [textB]))[0]);
          predictions[m.name] = verdictsB.get(key);
        }) : []),
      ]);
    }
  } catch (e) { if (id === mainRequest) failed(e); return; }
  if (id !== mainRequest) return;  // a newer keystroke's answer is on its way
  state.docs = docs;
  state.predictions = predictions;
  const tokens = Object.values(docs)[0] ? Object.values(docs)[0].tokens.length : 0;
  const drawing = performance.now();
  draw();
  state.timing = { ms: performance.now() - start, drawMs: performance.now() - drawing, tokens };
  window.seqlabTiming = state.timing;
  document.body.dataset.main = String(id);  // which update of the main sentence is drawn
  $("timing").textContent = `updated in ${state.timing.ms.toFixed(0)} ms (${tokens} tokens)`;
  status(`${state.models.length} model(s) served`);
  if (text.trim()) await attributeAll(id, text, docs, start);
}

// the "Why" view's attributions, drawn into the answer on the page once they all arrived
async function attributeAll(id, text, docs, start) {
  const names = state.classifiers.filter((m) => Api.roles(m).attributed).map((m) => m.name);
  let found;
  try {
    found = await Promise.all(names.map((name) => Api.attribute(name, text)));
  } catch (e) { if (id === mainRequest) failed(e); return; }
  if (id !== mainRequest) return;
  names.forEach((name, i) => { if (docs[name]) docs[name].outputs.attribution = found[i].attribution; });
  Views.drawWhy(state);
  state.timing.whyMs = performance.now() - start;
  document.body.dataset.why = String(id);  // ... and whose attribution bars are
}

// the language model's and the translator's views: each inspects its own model and text; only
// the newest request's answer is drawn (`key`: "lm" or "mt" -> state.<key>Model, Text, Doc)
function inspector(key) {
  let latest = 0;
  return async function update() {
    const id = ++latest, model = state[`${key}Model`], text = state[`${key}Text`];
    if (!model || !text.trim()) { state[`${key}Doc`] = null; draw(); return; }
    try {
      const doc = await Api.inspect(model, text);
      if (id === latest) { state[`${key}Doc`] = doc; draw(); }
    } catch (e) { failed(e); }
  };
}
const updateLm = inspector("lm"), updateMt = inspector("mt");

async function sample() {
  state.lmSample = state.lmText;
  draw();
  const k = Number($("top-k").value);
  try {
    await Api.generate(state.lmModel, { prime: state.lmText, length: 200, temperature: Number($("temperature").value),
      top_k: k > 0 ? k : null }, (piece) => { state.lmSample += piece; $("lm-sample").textContent = state.lmSample; });
  } catch (e) { failed(e); }
}

function shuffleWords() {
  const words = state.text.trim().split(/\s+/);
  if (new Set(words).size < 2) return;
  const original = words.join(" ");
  let shuffled = original;
  while (shuffled === original) {  // Fisher-Yates until the order differs
    for (let i = words.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [words[i], words[j]] = [words[j], words[i]];
    }
    shuffled = words.join(" ");
  }
  $("text").value = state.text = shuffled;
  updateMain();
}

// -- save this view ------------------------------------------------------------------------
async function saveView() {
  const [html, css, ...scripts] = await Promise.all(
    ["/", "/static/page.css", "/static/api.js", "/static/views.js", "/static/page.js"].map(
      async (path) => (await fetch(path)).text()));
  const data = JSON.stringify({ state: { ...state, timing: null } }).replace(/</g, "\\u003c");
  // inlined code must not end its <script> element early: "</script" becomes "<\/script"
  const inline = (code) => code.replace(/<\/(script)/gi, "<\\/$1");
  const sources = { api: scripts[0], views: scripts[1], page: scripts[2] };
  let page = html.replace(/<link rel="stylesheet" href="\/static\/page\.css">/, () => `<style>\n${css}</style>`);
  page = page.replace(/<script src="\/static\/(\w+)\.js"><\/script>/g, (_, name) =>
    (name === "api" ? `<script>window.SEQLAB_SAVED = ${data};<\/script>\n` : "")
    + `<script>\n${inline(sources[name])}<\/script>`);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([page], { type: "text/html" }));
  link.download = "seqlab-view.html";
  document.body.append(link);
  link.click();
  link.remove();
}

// -- hover: one token lit in every view -------------------------------------------------------
function hover(event, on) {
  const node = event.target.closest && event.target.closest("[data-tok]");
  if (!node) return;
  document.querySelectorAll(`[data-tok="${CSS.escape(node.dataset.tok)}"]`).forEach((n) => n.classList.toggle("hl", on));
}

function wire() {
  const main = debounce(updateMain, DEBOUNCE_MS);
  $("text").addEventListener("input", () => { state.text = $("text").value; main(); });
  $("text-b").addEventListener("input", () => { state.textB = $("text-b").value; main(); });
  $("shuffle").addEventListener("click", shuffleWords);
  $("save").addEventListener("click", () => saveView().catch(failed));
  $("token").addEventListener("change", () => { Api.setToken($("token").value); start(); });
  $("rnn-model").addEventListener("change", () => { state.rnnModel = $("rnn-model").value; state.unit = null; draw(); });
  $("rnn-layer").addEventListener("change", () => { state.rnnLayer = $("rnn-layer").value; draw(); });
  $("sort-units").addEventListener("change", () => { state.sortUnits = $("sort-units").checked; draw(); });
  $("cnn-model").addEventListener("change", () => { state.cnnModel = $("cnn-model").value; draw(); });
  $("tag-model").addEventListener("change", () => { state.tagModel = $("tag-model").value; updateMain(); });
  $("lm-model").addEventListener("change", () => { state.lmModel = $("lm-model").value; updateLm(); });
  $("mt-model").addEventListener("change", () => { state.mtModel = $("mt-model").value; updateMt(); });
  $("lm-text").addEventListener("input", debounce(() => { state.lmText = $("lm-text").value; updateLm(); }, DEBOUNCE_MS));
  $("mt-text").addEventListener("input", debounce(() => { state.mtText = $("mt-text").value; updateMt(); }, DEBOUNCE_MS));
  $("temperature").addEventListener("input", () => { $("temperature-out").textContent = $("temperature").value; });
  $("top-k").addEventListener("input", () => {
    $("top-k-out").textContent = $("top-k").value === "0" ? "off" : $("top-k").value;
  });
  $("sample").addEventListener("click", sample);
  document.addEventListener("mouseover", (e) => hover(e, true));
  document.addEventListener("mouseout", (e) => hover(e, false));
}

async function start() {
  try {
    state.models = await Api.models();
  } catch (e) { failed(e); return; }
  $("token-box").hidden = true;
  state.classifiers = state.models.filter((m) => Api.roles(m).classifier && Api.roles(m).traced);
  state.text = $("text").value;
  state.textB = $("text-b").value;
  state.tagModel = named("tagger")[0] || null;
  state.lmModel = named("lm")[0] || null;
  state.mtModel = named("translator")[0] || null;
  state.lmText = $("lm-text").value;
  state.mtText = $("mt-text").value;
  await Promise.all([updateMain(), updateLm(), updateMt()]);
}

function startSaved() {
  Object.assign(state, Api.saved.state);
  for (const [id, value] of [["text", state.text], ["text-b", state.textB], ["lm-text", state.lmText],
    ["mt-text", state.mtText]]) { $(id).value = value; $(id).readOnly = true; }
  for (const id of ["shuffle", "sample", "save"]) $(id).hidden = true;
  // the choices of the saved view still switch between the answers it holds
  $("rnn-model").addEventListener("change", () => { state.rnnModel = $("rnn-model").value; state.unit = null; draw(); });
  $("rnn-layer").addEventListener("change", () => { state.rnnLayer = $("rnn-layer").value; draw(); });
  $("sort-units").addEventListener("change", () => { state.sortUnits = $("sort-units").checked; draw(); });
  $("cnn-model").addEventListener("change", () => { state.cnnModel = $("cnn-model").value; draw(); });
  document.addEventListener("mouseover", (e) => hover(e, true));
  document.addEventListener("mouseout", (e) => hover(e, false));
  draw();
  status("saved view (offline): the answers were saved with the page");
}

if (Api.saved) startSaved(); else { wire(); start(); }
