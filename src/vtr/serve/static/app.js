// vtr web page: search through /api/search, show result cards, play a chosen moment from /api/videos/{id}/stream.
// Every value from the server is put in the page as text (textContent), never parsed as HTML.
"use strict";

const MAX_RESULTS = 24;

const form = document.getElementById("search-form");
const input = document.getElementById("q");
const button = document.getElementById("search-button");
const statusLine = document.getElementById("status");
const list = document.getElementById("results");
const player = document.getElementById("player");
const video = document.getElementById("video");
const playerTitle = document.getElementById("player-title");
const playerMoment = document.getElementById("player-moment");
const playerScore = document.getElementById("player-score");
const playerPath = document.getElementById("player-path");

let current = null; // the result being played
let searchSeq = 0; // a slow answer to an older query must not overwrite a newer one

function formatTime(seconds) {
  const rounded = Math.round(Math.max(0, seconds) * 10) / 10; // to tenths first, so 2.96 s reads 0:03
  const whole = Math.floor(rounded);
  const tenths = Math.round((rounded - whole) * 10);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  const ss = String(s).padStart(2, "0") + (tenths > 0 ? "." + tenths : "");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function momentText(result) {
  return `${formatTime(result.start)} – ${formatTime(result.end)}`;
}

function setStatus(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function errorMessage(body, status) {
  // FastAPI answers {"detail": "..."} or, for validation errors, {"detail": [{"msg": "..."}, ...]}.
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail) && body.detail.length) return body.detail.map((d) => d.msg).join("; ");
  return `the server answered ${status}`;
}

async function search(query) {
  const seq = ++searchSeq;
  button.disabled = true;
  setStatus(`Searching for “${query}”…`);
  try {
    const url = `api/search?q=${encodeURIComponent(query)}&k=${MAX_RESULTS}`;
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => null);
    if (seq !== searchSeq) return;
    if (!response.ok) {
      setStatus(`Search failed: ${errorMessage(body, response.status)}`, true);
      return;
    }
    renderResults(body);
  } catch (error) {
    if (seq === searchSeq) setStatus(`Search failed: ${error.message}`, true);
  } finally {
    if (seq === searchSeq) button.disabled = false;
  }
}

function renderResults(body) {
  list.replaceChildren();
  const results = body.results || [];
  if (results.length === 0) {
    setStatus(`No results for “${body.query}”.`);
    return;
  }
  for (const result of results) list.appendChild(card(result));
  const plural = results.length === 1 ? "result" : "results";
  setStatus(`${results.length} ${plural} for “${body.query}” in ${Math.round(body.took_ms)} ms. Click one to play it.`);
}

function card(result) {
  const item = element("li");
  const btn = element("button", "card");
  btn.type = "button";
  btn.dataset.id = String(result.id);
  btn.dataset.start = String(result.start);
  btn.setAttribute("aria-label", `${result.file_name}, ${momentText(result)}, score ${result.score.toFixed(3)}`);

  const thumb = element("div", "thumb");
  const img = element("img");
  img.alt = "";
  img.loading = "lazy";
  img.addEventListener("error", () => {
    img.remove();
    thumb.classList.add("missing");
  });
  img.src = result.thumbnail_url;
  thumb.append(img, element("span", "badge rank", `#${result.rank}`), element("span", "badge time", momentText(result)));

  const body = element("div", "card-body");
  const title = element("p", "card-title", result.file_name);
  title.title = result.path;
  const score = element("div", "score");
  score.title = "cosine similarity between the query and this moment";
  const bar = element("div", "score-bar");
  const fill = element("div", "score-fill");
  // An absolute scale (cosine similarity, clamped to [0, 1]) so that bars compare across queries.
  fill.style.width = `${Math.round(Math.min(1, Math.max(0, result.score)) * 100)}%`;
  bar.appendChild(fill);
  score.append(bar, element("span", "score-value", result.score.toFixed(3)));
  body.append(title, score);

  btn.append(thumb, body);
  btn.addEventListener("click", () => play(result, btn));
  item.appendChild(btn);
  return item;
}

function seekToMoment() {
  if (!current) return;
  video.currentTime = current.start;
  video.play().catch(() => {}); // autoplay may be refused; the controls still work
}

function play(result, btn) {
  for (const active of list.querySelectorAll(".card.active")) active.classList.remove("active");
  btn.classList.add("active");
  current = result;
  playerTitle.textContent = result.file_name;
  playerMoment.textContent = `Moment ${momentText(result)}`;
  playerScore.textContent = `Rank ${result.rank} · score ${result.score.toFixed(3)}`;
  playerPath.textContent = result.path;
  video.dataset.momentStart = String(result.start);
  player.hidden = false;

  const source = new URL(result.stream_url, document.baseURI).href;
  if (video.src === source && video.readyState >= HTMLMediaElement.HAVE_METADATA) {
    seekToMoment();
  } else {
    video.addEventListener("loadedmetadata", seekToMoment, { once: true });
    video.src = source;
  }
  player.scrollIntoView({ behavior: "smooth", block: "nearest" });
}

function closePlayer() {
  video.pause();
  player.hidden = true;
  for (const active of list.querySelectorAll(".card.active")) active.classList.remove("active");
  current = null;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const query = input.value.trim();
  if (!query) {
    setStatus("Type a description first.", true);
    return;
  }
  const url = new URL(window.location.href);
  url.searchParams.set("q", query);
  history.replaceState(null, "", url);
  search(query);
});

document.getElementById("replay").addEventListener("click", seekToMoment);
document.getElementById("close-player").addEventListener("click", closePlayer);
document.addEventListener("keydown", (event) => {
  if (event.key === "/" && document.activeElement !== input) {
    event.preventDefault();
    input.focus();
  } else if (event.key === "Escape" && !player.hidden) {
    closePlayer();
  }
});

// A link with ?q=... runs its search on load.
const initial = new URL(window.location.href).searchParams.get("q");
if (initial && initial.trim()) {
  input.value = initial;
  search(initial.trim());
}
