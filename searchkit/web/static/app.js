// The search page: sends the form to GET /search and renders the hits.
// Hit HTML comes from the server already escaped, with <mark> around highlights;
// every other field is inserted as text.
"use strict";

const form = document.getElementById("search");
const input = document.getElementById("q");
const results = document.getElementById("results");
const status = document.getElementById("status");

const WEAK = 0.2; // below this relevance a hit is shown as a weak match (search/relevance.py)

function scoreLine(hit) {
  const parts = [`relevance ${hit.relevance.toFixed(2)}`, `fused ${hit.score.toFixed(4)}`];
  parts.push(hit.bm25 ? `BM25 #${hit.bm25.rank} (${hit.bm25.score.toFixed(2)})` : "BM25: not found");
  parts.push(hit.vector ? `vector #${hit.vector.rank} (${hit.vector.score.toFixed(3)})` : "vector: not found");
  return parts.join(" · ");
}

function renderHit(hit) {
  const item = document.createElement("li");
  const weak = hit.relevance < WEAK;
  item.className = weak ? "hit weak" : "hit";
  const title = document.createElement("h2");
  title.textContent = hit.title || hit.doc_id;
  if (weak) {
    const label = document.createElement("span");
    label.className = "weak-label";
    label.textContent = "weak match";
    title.append(" ", label);
  }
  const where = document.createElement("p");
  where.className = "where";
  where.textContent = `${hit.doc_id} [${hit.start}:${hit.end}]` + (hit.page ? ` · page ${hit.page}` : "");
  const text = document.createElement("p");
  text.className = "passage";
  text.innerHTML = hit.html; // escaped by the server
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "scores";
  const breakdown = document.createElement("p");
  breakdown.textContent = scoreLine(hit);
  details.append(summary, breakdown);
  item.append(title, where, text, details);
  return item;
}

async function search(event) {
  if (event) event.preventDefault();
  const q = input.value.trim();
  if (!q) return;
  const mode = form.elements.mode.value;
  const params = new URLSearchParams({ q, mode, k: "10", explain: "true" });
  history.replaceState(null, "", `/?${params}`);
  status.textContent = "Searching…";
  results.replaceChildren();
  try {
    const response = await fetch(`/search?${params}`);
    const body = await response.json();
    if (!response.ok) {
      const detail = typeof body.detail === "string" ? body.detail : "invalid query";
      status.textContent = `Error: ${detail}`;
      return;
    }
    results.replaceChildren(...body.hits.map(renderHit));
    status.textContent = body.hits.length
      ? `${body.hits.length} results · ${body.mode} · generation ${body.generation} · ${Math.round(body.took_ms)} ms`
      : "No results.";
  } catch (error) {
    status.textContent = "The server did not answer.";
  }
}

form.addEventListener("submit", search);
for (const radio of form.elements.mode) {
  radio.addEventListener("change", () => input.value.trim() && search());
}
const initial = new URLSearchParams(location.search);
if (initial.get("q")) {
  input.value = initial.get("q");
  const mode = initial.get("mode");
  if (mode && form.querySelector(`input[value="${CSS.escape(mode)}"]`)) form.elements.mode.value = mode;
  search();
}
