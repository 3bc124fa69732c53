/* anchoralign web view: `anchoralign extract` results as highlighted entity spans and relation arcs.
 *
 * Plain JS + SVG, no framework, no build step, nothing fetched but the page's own server. Two modes:
 *  - static: the page embeds {"results": [...]} in <script type="application/json" id="anchoralign-data">;
 *  - served: the text box posts {"texts": [text], "threshold": 0} to v1/extract (with "any_script": true when
 *    "read any script" is ticked) and shows the answer.
 * The threshold slider filters on the client: a relation is shown when its score >= t, an entity when its
 * score >= t or a shown relation uses it (the library's rule). A missing score counts as 1.
 *
 * Offsets are Python string indices (code points, end exclusive); JS strings are UTF-16, so every slice goes
 * through a code point -> code unit table and an emoji before an entity does not shift it.
 *
 * Layout: the text is cut into unbreakable atoms (words, single CJK characters, clusters of overlapping
 * entities), laid out once in a hidden copy to find where the browser breaks the lines, then drawn line by
 * line, each line with an SVG above it holding the arcs whose two ends are on that line. Arcs between lines
 * are listed below the text. All user text goes in as text nodes or attributes, never as HTML.
 */
(function () {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const LEVEL_STEP = 22; // px between stacked arc levels
  const LABEL_SPACE = 8; // px above the highest arc's label
  const CORNER = 6; // px radius of an arc's corners
  const ARROW = 7; // px length of an arrowhead
  const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;
  const SPACE = /\s/u;
  const LETTER = /\p{L}/u;
  const RTL = /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}]/u;

  const state = {
    results: [],
    prepared: [],
    threshold: 0,
    isStatic: false,
    width: 0,
    schema: { entities: [], relations: [] }, // from v1/model, so colours stay put between answers
    entityHues: new Map(),
    relationHues: new Map(),
  };

  function byId(id) {
    return document.getElementById(id);
  }

  function h(tag, attrs, children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const c of children || []) node.append(c); // strings become text nodes
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, String(v));
    }
  }

  // ---- colours: the page's types, sorted by name, get evenly spaced hues ----
  // (A hash of the name alone put Live_In and OrgBased_In on the same blue.) The same set of types always
  // gets the same colours: every result of a static page, every answer of one served model.

  function spacedHues(types, offset) {
    const sorted = [...new Set(types)].sort();
    const hues = new Map();
    sorted.forEach((t, i) => hues.set(t, { hue: Math.round(offset + (i * 360) / sorted.length) % 360, odd: i % 2 }));
    return hues;
  }

  function entityColours(type) {
    const c = state.entityHues.get(type) || { hue: 0, odd: 0 };
    return { bg: `hsl(${c.hue} 80% ${c.odd ? 86 : 90}%)`, fg: `hsl(${c.hue} 60% ${c.odd ? 28 : 36}%)` };
  }

  function relationColour(type) {
    const c = state.relationHues.get(type) || { hue: 0, odd: 0 };
    return `hsl(${c.hue} 70% ${c.odd ? 26 : 34}%)`;
  }

  // ---- one result, checked and indexed once ----

  function scoreOf(x) {
    return typeof x.score === "number" && Number.isFinite(x.score) ? x.score : 1;
  }

  function prepare(raw, index) {
    const problems = [];
    const rec = raw && typeof raw === "object" ? raw : {};
    const text = typeof rec.text === "string" ? rec.text : "";
    if (typeof rec.text !== "string") problems.push('the result has no string "text"');
    const chars = Array.from(text); // code points, as Python indexes them
    const units = [0];
    for (const c of chars) units.push(units[units.length - 1] + c.length);
    const slice = (a, b) => text.slice(units[a], units[b]);
    const entities = [];
    const byKey = new Map();
    (Array.isArray(rec.entities) ? rec.entities : []).forEach((e, i) => {
      e = e && typeof e === "object" ? e : {};
      const key = Number.isInteger(e.id) ? e.id : i;
      const ok = Number.isInteger(e.start) && Number.isInteger(e.end) && e.start >= 0 && e.start < e.end &&
        e.end <= chars.length;
      const ent = { key, order: i, start: e.start, end: e.end, type: String(e.type), score: scoreOf(e),
        scored: typeof e.score === "number", ok };
      if (!ok) {
        problems.push(`entity ${key} (${ent.type}) has offsets [${e.start}, ${e.end}) outside the text ` +
          `of ${chars.length} characters; not drawn`);
      } else if (typeof e.text === "string" && e.text !== slice(e.start, e.end)) {
        problems.push(`entity ${key}: its "text" ${JSON.stringify(e.text)} differs from the text at ` +
          `[${e.start}, ${e.end}) ${JSON.stringify(slice(e.start, e.end))}`);
      }
      entities.push(ent);
      byKey.set(key, ent);
    });
    const relations = [];
    (Array.isArray(rec.relations) ? rec.relations : []).forEach((r, i) => {
      r = r && typeof r === "object" ? r : {};
      const head = byKey.get(r.head);
      const tail = byKey.get(r.tail);
      const ok = Boolean(head && tail && head.ok && tail.ok);
      const rel = { order: i, head: r.head, tail: r.tail, type: String(r.type), score: scoreOf(r),
        scored: typeof r.score === "number", ok };
      if (!ok) {
        problems.push(`relation ${i} (${rel.type}) refers to a missing or undrawn entity ` +
          `(head ${r.head}, tail ${r.tail}); not drawn`);
      }
      relations.push(rel);
    });
    return { index, rec, text, chars, units, slice, entities, byKey, relations, problems };
  }

  function visibleAt(p, t) {
    const rels = p.relations.filter((r) => r.ok && r.score >= t);
    const keys = new Set(p.entities.filter((e) => e.ok && e.score >= t).map((e) => e.key));
    for (const r of rels) {
      keys.add(r.head);
      keys.add(r.tail);
    }
    return { ents: p.entities.filter((e) => keys.has(e.key)), rels };
  }

  // The paragraph direction as dir="auto" would find it: from the first letter.
  function textDirection(chars) {
    const first = chars.find((c) => LETTER.test(c));
    return first && RTL.test(first) ? "rtl" : "ltr";
  }

  function label(x) {
    return x.scored ? `${x.type} ${x.score.toFixed(2)}` : x.type;
  }

  // ---- atoms: the pieces a line may not break inside ----

  function atomsOf(p, ents) {
    const spans = ents.slice().sort((a, b) => a.start - b.start || b.end - a.end || a.order - b.order);
    const clusters = [];
    for (const e of spans) {
      const last = clusters[clusters.length - 1];
      if (last && e.start < last.end) {
        last.end = Math.max(last.end, e.end);
        last.ents.push(e);
      } else {
        clusters.push({ kind: "cluster", start: e.start, end: e.end, ents: [e] });
      }
    }
    const out = [];
    const plain = (a, b) => {
      let i = a;
      while (i < b) {
        const space = SPACE.test(p.chars[i]);
        let j = i + 1;
        if (!CJK.test(p.chars[i])) {
          while (j < b && SPACE.test(p.chars[j]) === space && (space || !CJK.test(p.chars[j]))) j++;
        }
        out.push({ kind: space ? "space" : "word", start: i, end: j });
        i = j;
      }
    };
    let pos = 0;
    for (const c of clusters) {
      plain(pos, c.start);
      out.push(c);
      pos = c.end;
    }
    plain(pos, p.chars.length);
    return out;
  }

  // Entity spans of one cluster, nested; an entity that crosses the end of an enclosing one is cut in parts.
  function fillSpans(parent, p, start, end, items, parts) {
    const order = (a, b) => a.start - b.start || b.end - a.end || a.e.order - b.e.order;
    let todo = items.slice().sort(order);
    let pos = start;
    let height = 0;
    while (todo.length) {
      const a = todo[0];
      const inner = [];
      const rest = [];
      for (const b of todo.slice(1)) {
        if (b.start >= a.end) {
          rest.push(b);
        } else if (b.end <= a.end) {
          inner.push(b);
        } else {
          inner.push({ e: b.e, start: b.start, end: a.end, part: b.part });
          rest.push({ e: b.e, start: a.end, end: b.end, part: b.part + 1 });
        }
      }
      if (a.start > pos) parent.append(p.slice(pos, a.start));
      const node = entityNode(a);
      const depth = 1 + fillSpans(node, p, a.start, a.end, inner, parts);
      node.style.padding = `${2 + 4 * (depth - 1)}px ${2 + 2 * (depth - 1)}px`;
      parent.append(node);
      if (!parts.has(a.e.key)) parts.set(a.e.key, []);
      parts.get(a.e.key).push(node);
      height = Math.max(height, depth);
      pos = a.end;
      todo = rest.sort(order);
    }
    if (end > pos) parent.append(p.slice(pos, end));
    return height;
  }

  function entityNode(item) {
    const e = item.e;
    const colours = entityColours(e.type);
    const score = e.scored ? e.score.toFixed(2) : "1 (none given)";
    const node = h("span", {
      class: item.part ? "aa-ent aa-ent-cont" : "aa-ent",
      "data-id": e.key,
      "data-start": e.start,
      "data-end": e.end,
      "data-type": e.type,
      "data-score": e.score,
      "data-label": label(e),
      "data-part": item.part ? item.part : undefined,
      title: `${e.type}, score ${score}, characters [${e.start}, ${e.end})`,
    });
    node.style.setProperty("--aa-bg", colours.bg);
    node.style.setProperty("--aa-fg", colours.fg);
    return node;
  }

  // `measuring`: in the hidden copy a newline breaks the line; on a drawn line it is a space like the others.
  function atomNode(p, atom, parts, measuring) {
    if (atom.kind === "space") {
      const space = p.slice(atom.start, atom.end);
      return document.createTextNode(measuring ? space : space.replace(/[\n\r\v\f\u0085\u2028\u2029]/g, " "));
    }
    const node = h("span", { class: "aa-atom" });
    if (atom.kind === "word") {
      node.append(p.slice(atom.start, atom.end));
    } else {
      const items = atom.ents.map((e) => ({ e, start: e.start, end: e.end, part: 0 }));
      atom.depth = fillSpans(node, p, atom.start, atom.end, items, parts);
    }
    return node;
  }

  // Where the browser breaks the lines: lay the atoms out in a hidden copy and group them by position.
  function breakLines(block, p, atoms, dir) {
    const measure = h("div", { class: "aa-measure", dir });
    const nodes = atoms.map((a) => atomNode(p, a, new Map(), true));
    measure.append(...nodes);
    block.append(measure);
    const lines = [];
    let current = null;
    let lastMiddle = -Infinity;
    atoms.forEach((a, i) => {
      if (a.kind === "space") {
        if (!current) lines.push((current = []));
        current.push(a); // a space belongs to the line it follows, where it can be dropped unseen
        return;
      }
      const r = nodes[i].getBoundingClientRect();
      if (!current || (r.top > lastMiddle && current.some((x) => x.kind !== "space"))) lines.push((current = []));
      current.push(a);
      lastMiddle = (r.top + r.bottom) / 2;
    });
    measure.remove();
    return lines.length ? lines : [[]];
  }

  // ---- arcs ----

  function drawArcs(lineEl, svgEl, arcs, parts) {
    const box = lineEl.getBoundingClientRect();
    const rect = (key) => parts.get(key)[0].getBoundingClientRect();
    const centre = (key) => {
      const r = rect(key);
      return (r.left + r.right) / 2 - box.left;
    };
    // Spread the ends meeting one entity across its width, ordered by where the other end lies, so arrows
    // do not coincide and nested arcs do not cross.
    const ends = new Map();
    for (const a of arcs) {
      for (const [key, other, side] of [[a.rel.head, a.rel.tail, "x1"], [a.rel.tail, a.rel.head, "x2"]]) {
        if (!ends.has(key)) ends.set(key, []);
        ends.get(key).push({ a, side, other: centre(other) });
      }
    }
    for (const [key, list] of ends) {
      const r = rect(key);
      const left = r.left - box.left;
      const width = r.right - r.left;
      const pad = Math.min(6, width / 4);
      list.sort((u, v) => u.other - v.other);
      list.forEach((end, i) => {
        end.a[end.side] = left + pad + ((width - 2 * pad) * (i + 1)) / (list.length + 1);
      });
    }
    // Labels first: their widths decide which arcs must stack.
    for (const a of arcs) {
      a.g = svg("g", { class: "aa-arc", "data-head": a.rel.head, "data-tail": a.rel.tail, "data-type": a.rel.type,
        "data-score": a.rel.score });
      a.text = svg("text", { "text-anchor": "middle", fill: relationColour(a.rel.type) });
      a.text.append(label(a.rel));
      a.g.append(a.text);
      svgEl.append(a.g);
      a.labelWidth = a.text.getComputedTextLength();
    }
    // Shorter arcs lower; an arc goes one level above every shorter arc (or label) it overlaps.
    const placed = [];
    for (const a of arcs.slice().sort((u, v) => Math.abs(u.x2 - u.x1) - Math.abs(v.x2 - v.x1))) {
      const mid = (a.x1 + a.x2) / 2;
      const half = a.labelWidth / 2 + 6;
      a.lo = Math.min(a.x1, a.x2, mid - half);
      a.hi = Math.max(a.x1, a.x2, mid + half);
      a.level = 1;
      for (const b of placed) if (b.lo < a.hi && a.lo < b.hi) a.level = Math.max(a.level, b.level + 1);
      placed.push(a);
    }
    const top = Math.max(0, ...arcs.map((a) => a.level));
    const height = top ? top * LEVEL_STEP + LABEL_SPACE + 12 : 0;
    svgEl.setAttribute("height", height);
    const width = box.width;
    for (const a of arcs) {
      const colour = relationColour(a.rel.type);
      const y = height - a.level * LEVEL_STEP; // the arc's horizontal stretch
      const y1 = rect(a.rel.head).top - box.top - 1;
      const y2 = rect(a.rel.tail).top - box.top - 1;
      const dir = a.x2 >= a.x1 ? 1 : -1;
      const r = Math.min(CORNER, Math.abs(a.x2 - a.x1) / 2);
      const d = [
        `M${a.x1},${y1}`, `L${a.x1},${y + r}`, `Q${a.x1},${y} ${a.x1 + dir * r},${y}`,
        `L${a.x2 - dir * r},${y}`, `Q${a.x2},${y} ${a.x2},${y + r}`, `L${a.x2},${y2 - ARROW + 1}`,
      ].join(" ");
      const line = svg("path", { class: "aa-arc-line", d, stroke: colour });
      const head = svg("path", {
        class: "aa-arc-head", fill: colour,
        d: `M${a.x2},${y2} L${a.x2 - 3.5},${y2 - ARROW} L${a.x2 + 3.5},${y2 - ARROW} Z`,
      });
      a.text.setAttribute("x", labelX(a, arcs, width));
      a.text.setAttribute("y", y - 4);
      const tip = svg("title", {});
      tip.append(a.tip);
      a.g.prepend(tip, line, head);
    }
  }

  // The label's centre: over the middle of its arc unless the leg of a higher arc would cross it there; then
  // the free place nearest the middle that stays within the room the arc was given (a.lo .. a.hi).
  function labelX(a, arcs, width) {
    const half = a.labelWidth / 2 + 3;
    const lo = Math.max(a.lo + half - 6, half);
    const hi = Math.min(a.hi - half + 6, width - half);
    const mid = Math.min(Math.max((a.x1 + a.x2) / 2, lo), Math.max(lo, hi));
    const legs = [];
    for (const b of arcs) if (b.level > a.level) legs.push(b.x1, b.x2);
    const free = (x) => legs.every((leg) => Math.abs(leg - x) > half);
    const candidates = [mid];
    for (const leg of legs) candidates.push(leg - half - 1, leg + half + 1);
    const fits = candidates.filter((x) => x >= lo && x <= hi && free(x));
    fits.sort((u, v) => Math.abs(u - mid) - Math.abs(v - mid));
    return fits.length ? fits[0] : mid;
  }

  function hover(target, keys, parts) {
    const set = (on) => () => {
      for (const k of keys) for (const n of parts.get(k) || []) n.classList.toggle("aa-hl", on);
    };
    target.addEventListener("mouseenter", set(true));
    target.addEventListener("mouseleave", set(false));
  }

  // ---- one result ----

  function stat(key, text, alert) {
    return h("span", { class: alert ? "aa-stat aa-stat-alert" : "aa-stat", "data-key": key }, [text]);
  }

  function resultHead(p, shown) {
    const rec = p.rec;
    const head = h("div", { class: "aa-result-head" }, [
      stat("index", `text ${p.index + 1}`),
      stat("entities", `entities ${shown.ents.length}/${p.entities.length}`),
      stat("relations", `relations ${shown.rels.length}/${p.relations.length}`),
    ]);
    if (typeof rec.windows === "number" && rec.windows !== 1) head.append(stat("windows", `windows ${rec.windows}`));
    for (const key of ["cut", "truncated"]) {
      if (rec[key]) head.append(stat(key, `${key} ${typeof rec[key] === "number" ? rec[key] : JSON.stringify(rec[key])}`, true));
    }
    const errors = rec.errors;
    if (errors && typeof errors === "object" && !Array.isArray(errors)) {
      const kinds = Object.entries(errors).filter(([, n]) => n);
      if (kinds.length) head.append(stat("errors", `errors: ${kinds.map(([k, n]) => `${k} ${n}`).join(", ")}`, true));
    } else if (errors) {
      head.append(stat("errors", `errors: ${JSON.stringify(errors)}`, true));
    }
    return head;
  }

  function entityText(p, key) {
    const e = p.byKey.get(key);
    return `${p.slice(e.start, e.end)} (${e.type})`;
  }

  function renderResult(root, p, t) {
    const shown = visibleAt(p, t);
    const card = h("section", { class: "aa-result", "data-index": p.index });
    root.append(card);
    card.append(resultHead(p, shown));
    for (const problem of p.problems) card.append(h("div", { class: "aa-warn" }, [problem]));
    const dir = textDirection(p.chars);
    const block = h("div", { class: "aa-block", dir });
    card.append(block);
    if (!p.chars.length) {
      block.append(h("span", { class: "aa-empty" }, ["(empty text)"]));
      return;
    }
    const atoms = atomsOf(p, shown.ents);
    const lines = breakLines(block, p, atoms, dir);
    const parts = new Map(); // entity key -> its span elements (more than one when cut by a crossing one)
    const lineOf = new Map();
    const lineEls = lines.map((atomsOfLine, li) => {
      const svgEl = svg("svg", { class: "aa-arcs", width: "100%", height: 0 });
      const textEl = h("div", { class: "aa-line-text", dir });
      let depth = 0;
      for (const a of atomsOfLine) {
        textEl.append(atomNode(p, a, parts));
        if (a.kind === "cluster") for (const e of a.ents) lineOf.set(e.key, li);
        depth = Math.max(depth, a.depth || 0);
      }
      // Nested spans grow by their padding, which the line height does not make room for.
      if (depth > 1) textEl.style.paddingBlock = `${4 * (depth - 1)}px`;
      const lineEl = h("div", { class: "aa-line" }, [svgEl, textEl]);
      block.append(lineEl);
      return { lineEl, svgEl, arcs: [] };
    });
    const across = [];
    for (const rel of shown.rels) {
      const li = lineOf.get(rel.head);
      const tip = `${entityText(p, rel.head)} → ${label(rel)} → ${entityText(p, rel.tail)}`;
      if (rel.head !== rel.tail && li === lineOf.get(rel.tail)) lineEls[li].arcs.push({ rel, tip });
      else across.push({ rel, tip });
    }
    for (const { lineEl, svgEl, arcs } of lineEls) {
      if (!arcs.length) continue;
      drawArcs(lineEl, svgEl, arcs, parts);
      for (const a of arcs) hover(a.g, [a.rel.head, a.rel.tail], parts);
    }
    if (across.length) {
      card.append(h("div", { class: "aa-crossline-title" }, ["relations between lines (or from an entity to itself):"]));
      const list = h("ul", { class: "aa-crossline" });
      for (const { rel } of across) {
        const item = h("li", { class: "aa-rel-item", "data-head": rel.head, "data-tail": rel.tail, "data-type": rel.type }, [
          entityText(p, rel.head), " → ",
          h("span", { class: "aa-rel-type", style: `color: ${relationColour(rel.type)}` }, [label(rel)]),
          " → ", entityText(p, rel.tail),
        ]);
        hover(item, [rel.head, rel.tail], parts);
        list.append(item);
      }
      card.append(list);
    }
  }

  // ---- the page ----

  function renderLegend() {
    const legend = byId("aa-legend");
    legend.replaceChildren();
    const entTypes = new Set();
    const relTypes = new Set();
    for (const p of state.prepared) {
      for (const e of p.entities) entTypes.add(e.type);
      for (const r of p.relations) relTypes.add(r.type);
    }
    state.entityHues = spacedHues([...entTypes, ...state.schema.entities], 10);
    state.relationHues = spacedHues([...relTypes, ...state.schema.relations], 215);
    for (const type of [...entTypes].sort()) {
      const c = entityColours(type);
      const swatch = h("span", { class: "aa-swatch", style: `background: ${c.bg}; border-color: ${c.fg}` });
      legend.append(h("span", { class: "aa-legend-item", "data-type": type }, [swatch, type]));
    }
    for (const type of [...relTypes].sort()) {
      const swatch = h("span", { class: "aa-swatch aa-swatch-rel", style: `background: ${relationColour(type)}` });
      legend.append(h("span", { class: "aa-legend-item aa-legend-rel", "data-type": type }, [swatch, `→ ${type}`]));
    }
  }

  function renderAll() {
    const root = byId("aa-results");
    root.replaceChildren();
    state.width = root.clientWidth;
    renderLegend();
    if (!state.prepared.length && state.isStatic) root.append(h("p", { class: "aa-empty" }, ["No results."]));
    for (const p of state.prepared) renderResult(root, p, state.threshold);
  }

  function setResults(results) {
    state.results = results;
    state.prepared = results.map(prepare);
    renderAll();
  }

  function showError(message) {
    const box = byId("aa-error");
    box.textContent = message;
    box.hidden = !message;
  }

  function setThreshold(value) {
    const t = Math.min(1, Math.max(0, Number(value) || 0));
    state.threshold = t;
    byId("aa-threshold").value = String(t);
    byId("aa-threshold-value").textContent = t.toFixed(2);
  }

  async function extract() {
    const button = byId("aa-extract");
    const status = byId("aa-status");
    const text = byId("aa-text").value;
    showError("");
    if (!text.trim()) {
      showError("Type or paste a text first.");
      return;
    }
    button.disabled = true;
    status.textContent = "Extracting…";
    try {
      const response = await fetch("v1/extract", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ texts: [text], threshold: 0, ...(byId("aa-any-script").checked ? { any_script: true } : {}) }),
      });
      const raw = await response.text();
      let body = null;
      try {
        body = JSON.parse(raw);
      } catch (_) {
        body = null;
      }
      if (!response.ok) {
        const error = body && body.error;
        const message = error && typeof error.message === "string" ? error.message : raw.trim() || response.statusText;
        // a text in a script the model never read (serve.py): the checkbox is how this page sends any_script
        const scriptHint = error && error.field === "texts.0" && message.includes("any_script")
          ? '. On this page: tick "read any script".' : "";
        setResults([]);
        showError(`HTTP ${response.status}: ${message}${scriptHint}`);
        status.textContent = "";
        return;
      }
      if (!body || !Array.isArray(body.results)) {
        setResults([]);
        showError('The server answered without a "results" list.');
        status.textContent = "";
        return;
      }
      setResults(body.results);
      status.textContent = "";
    } catch (err) {
      setResults([]);
      showError(`Request failed: ${err && err.message ? err.message : err}`);
      status.textContent = "";
    } finally {
      button.disabled = false;
    }
  }

  function describeModel(info) {
    if (!info || typeof info !== "object") return "";
    const bits = [];
    const dir = typeof info.model_dir === "string" ? info.model_dir.split(/[\\/]/).filter(Boolean).pop() : "";
    const name = info.name || info.model || dir;
    if (name) bits.push(`model: ${name}`);
    if (info.dataset) bits.push(`dataset: ${info.dataset}`);
    const schema = info.schema || {};
    const names = (x) => (Array.isArray(x) ? x : x && typeof x === "object" ? Object.keys(x) : []).map(String);
    const ents = names(schema.entity_types || schema.entities);
    const rels = names(schema.relation_types || schema.relations);
    state.schema = { entities: ents, relations: rels };
    if (ents.length) bits.push(`entity types: ${ents.join(", ")}`);
    if (rels.length) bits.push(`relation types: ${rels.join(", ")}`);
    const scripts = info.scripts && typeof info.scripts === "object" ? Object.entries(info.scripts) : [];
    const letters = scripts.reduce((sum, [, n]) => sum + (Number(n) || 0), 0);
    if (letters) {
      const top = scripts.filter(([, n]) => Number(n) / letters >= 0.001).sort((a, b) => b[1] - a[1]).map(([s]) => s);
      bits.push(`trained on: ${top.join(", ")} script${top.length > 1 ? "s" : ""}`);
    }
    return bits.join(" · ");
  }

  async function loadModel() {
    try {
      const response = await fetch("v1/model");
      if (!response.ok) return;
      const text = describeModel(await response.json());
      const el = byId("aa-model");
      el.textContent = text;
      el.hidden = !text;
      if (state.prepared.length) renderAll(); // the schema's types fix the colours
    } catch (_) {
      // the header is a nicety: a server without v1/model still extracts
    }
  }

  function start() {
    const slider = byId("aa-threshold");
    slider.addEventListener("input", () => {
      setThreshold(slider.value);
      renderAll();
    });
    let resizeTimer = 0;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        if (byId("aa-results").clientWidth !== state.width) renderAll();
      }, 150);
    });
    const data = byId("anchoralign-data");
    if (data) {
      state.isStatic = true;
      byId("aa-input").hidden = true;
      let payload;
      try {
        payload = JSON.parse(data.textContent);
      } catch (err) {
        showError(`The embedded results are not valid JSON: ${err.message}`);
        return;
      }
      if (typeof payload.threshold === "number") setThreshold(payload.threshold);
      setResults(Array.isArray(payload.results) ? payload.results : []);
      return;
    }
    setThreshold(slider.value);
    byId("aa-extract").addEventListener("click", extract);
    byId("aa-text").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) extract();
    });
    loadModel();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
