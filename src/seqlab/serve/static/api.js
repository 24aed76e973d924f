// The page's data: talks to the seqlab server (/v1/models, .../inspect, .../predict,
// .../generate). A saved view (window.SEQLAB_SAVED) has every answer inlined instead and
// never touches the network, so it opens offline from file://.
"use strict";

const Api = (() => {
  const saved = window.SEQLAB_SAVED || null;
  let token = sessionStorage.getItem("seqlab-token") || "";

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function headers() {
    const h = { "Content-Type": "application/json" };
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }

  async function call(path, body) {
    const response = await fetch(path, body === undefined ? { headers: headers() }
      : { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!response.ok) {
      let message = response.statusText;
      try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
      throw new ApiError(response.status, message);
    }
    return response.json();
  }

  // what each served model can be shown as, from its task's outputs in /v1/models
  function roles(model) {
    const verbs = model.verbs || [];
    return {
      classifier: verbs.includes("probe"),
      traced: verbs.includes("trace"),
      attributed: verbs.includes("attribute"),
      lm: verbs.includes("generate") && verbs.includes("trace"),
      translator: verbs.includes("translate") && verbs.includes("trace"),
      tagger: model.task === "tag" && verbs.includes("trace"),
    };
  }

  return {
    saved,
    ApiError,
    roles,
    setToken(value) { token = value; sessionStorage.setItem("seqlab-token", value); },
    async models() {
      if (saved) return saved.models;
      for (let i = 0; i < 200; i++) {  // the server answers 503 until every bundle is loaded
        try { return (await call("/v1/models")).models; } catch (e) {
          if (e.status !== 503) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      throw new ApiError(503, "the models did not finish loading");
    },
    inspect(name, text, options = {}) {
      return call(`/v1/models/${encodeURIComponent(name)}/inspect`, { text, ...options });
    },
    attribute(name, text) {
      return call(`/v1/models/${encodeURIComponent(name)}/attribute`, { text });
    },
    predict(name, texts) {
      return call(`/v1/models/${encodeURIComponent(name)}/predict`, { texts });
    },
    // stream a language model's continuation; onPiece(text) for each piece as it is sampled
    async generate(name, body, onPiece) {
      const response = await fetch(`/v1/models/${encodeURIComponent(name)}/generate`,
        { method: "POST", headers: headers(), body: JSON.stringify({ ...body, stream: true }) });
      if (!response.ok) {
        let message = response.statusText;
        try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
        throw new ApiError(response.status, message);
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        onPiece(decoder.decode(value, { stream: true }));
      }
    },
  };
})();

// a word-level bag of words for the lecture's table (lowercased words and punctuation)
function bagTokens(text) {
  return (text.toLowerCase().match(/[\p{L}\p{N}']+|[^\s\p{L}\p{N}]/gu) || []);
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}
