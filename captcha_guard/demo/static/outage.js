// The outage story: the comment form (GeeTest, with an emulated widget), the vendor controls,
// and the operator's panel, polled from /demo/panel. Everything is written with textContent.
"use strict";

const comment = document.getElementById("comment");
const solveButton = document.getElementById("gt-solve");
const postButton = document.getElementById("gt-post");
const replayButton = document.getElementById("gt-replay");
const widgetState = document.getElementById("gt-state");
const result = document.getElementById("gt-result");
const vendorMode = document.getElementById("vendor-mode");
const JSON_HEADERS = { "content-type": "application/json", accept: "application/json" };
const POLL_MS = 400;

let solved = null; // the four fields the widget handed over, until they are posted
let lastSent = null; // the exact body of the last post, for "send the same captcha again"

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setResult(kind, heading, detail) {
  result.replaceChildren(el("strong", kind, heading));
  if (detail) result.append(" ", el("span", "", detail));
  result.dataset.kind = kind;
}

// The widget stand-in: a real widget would show a puzzle and hand over these four fields.
solveButton.addEventListener("click", async () => {
  solveButton.disabled = true;
  try {
    const answer = await fetch("/demo/geetest/solve", { method: "POST", headers: JSON_HEADERS, body: "{}" });
    solved = await answer.json();
    widgetState.textContent = `solved ✓ lot ${solved.lot_number.slice(0, 8)}…`;
    widgetState.className = "solved";
  } finally {
    solveButton.disabled = false;
  }
});

async function post(body, label) {
  postButton.disabled = replayButton.disabled = true;
  setResult("pending", `${label}…`);
  const began = performance.now();
  try {
    const answer = await fetch(comment.action, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body,
    });
    const seconds = ((performance.now() - began) / 1000).toFixed(2);
    const data = await answer.json();
    const status = `${answer.status}`;
    if (answer.ok) {
      const kind = data.outcome === "passed" ? "passed" : "fallback";
      setResult(kind, `${status} · the app ran: ${data.outcome}`, `(${data.reason}; ${seconds} s)`);
    } else {
      setResult("denied", `${status} · the gate refused: ${data.reason}`, `(the app never ran; ${seconds} s)`);
    }
    result.dataset.status = status;
  } catch (error) {
    setResult("denied", `could not post: ${error.message}`);
  } finally {
    postButton.disabled = false;
    replayButton.disabled = lastSent === null;
    result.dataset.done = String(Number(result.dataset.done || 0) + 1); // posts answered
    refresh();
  }
}

comment.addEventListener("submit", (event) => {
  event.preventDefault();
  const body = new URLSearchParams({ comment: comment.elements.namedItem("comment").value });
  if (solved) for (const [name, value] of Object.entries(solved)) body.set(name, value);
  lastSent = solved ? body.toString() : lastSent;
  solved = null; // a widget hands out its fields once: solve again for the next post
  widgetState.textContent = "not solved";
  widgetState.className = "muted";
  post(body.toString(), "Posting");
});

replayButton.addEventListener("click", () => {
  if (lastSent !== null) post(lastSent, "Sending the same captcha again");
});

// The vendor controls.
for (const button of document.querySelectorAll("#modes button")) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await fetch("/demo/vendor", { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ mode: button.dataset.mode }) });
    } finally {
      button.disabled = false;
      refresh();
    }
  });
}

// The panel.
function time(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString("en-GB", { hour12: false });
}

function showVendor(mode) {
  vendorMode.textContent = mode;
  vendorMode.className = mode === "healthy" ? "tag ok" : "tag bad";
  for (const button of document.querySelectorAll("#modes button")) {
    button.classList.toggle("current", button.dataset.mode === mode);
  }
}

function showBreakers(breakers) {
  const rows = breakers.map((b) => {
    const row = el("tr");
    row.dataset.provider = b.provider;
    row.append(el("td", "", b.provider));
    const state = el("td");
    state.append(el("span", `state ${b.state}`, b.state));
    state.id = `breaker-${b.provider}`;
    row.append(state);
    let note = "";
    if (b.state === "local") note = "self-hosted: never calls out";
    else if (b.state === "open") note = `no calls; probe in ${Math.ceil(b.probe_in)} s`;
    else if (b.state === "half_open") note = "the next post is the probe";
    else note = `opens after ${b.failure_threshold} failures in a row`;
    row.append(el("td", "muted", note));
    return row;
  });
  document.getElementById("breakers").replaceChildren(...rows);
}

function showVerdicts(verdicts) {
  const body = document.getElementById("verdicts");
  if (verdicts.length === 0) {
    body.replaceChildren(el("tr", "empty")); body.firstChild.append(el("td", "", "none yet"));
    body.firstChild.firstChild.colSpan = 5;
    return;
  }
  body.replaceChildren(...verdicts.map((v) => {
    const row = el("tr", `outcome-${v.outcome}`);
    row.dataset.id = v.id;
    row.append(el("td", "muted", time(v.at)), el("td", "", v.provider));
    const outcome = el("td");
    outcome.append(el("span", `badge ${v.fallback && v.fallback !== "allowed" ? "refused" : v.outcome}`, v.outcome));
    row.append(outcome, el("td", "code", v.code));
    row.append(el("td", "muted", v.duration === null ? "no call" : `${v.duration.toFixed(2)} s`));
    return row;
  }));
}

function showChanges(changes) {
  const list = document.getElementById("changes");
  if (changes.length === 0) {
    list.replaceChildren(el("li", "empty", "none yet"));
    return;
  }
  list.replaceChildren(...changes.map((c) => {
    const item = el("li");
    item.append(el("span", "muted", `${time(c.at)} `), `${c.provider}: `,
      el("span", `state ${c.old}`, c.old), " → ", el("span", `state ${c.new}`, c.new));
    return item;
  }));
}

let polling = null;

async function refresh() {
  try {
    const answer = await fetch("/demo/panel", { cache: "no-store" });
    const panel = await answer.json();
    showVendor(panel.vendor);
    showBreakers(panel.breakers);
    for (const [name, value] of Object.entries(panel.counts)) {
      const cell = document.getElementById(`count-${name}`);
      if (cell) cell.textContent = value;
    }
    showVerdicts(panel.verdicts);
    showChanges(panel.changes);
    document.getElementById("panel").dataset.updated = String(Date.now());
  } catch (error) {
    // The demo server stopped: keep the last picture, try again on the next tick.
  }
}

function poll() {
  clearTimeout(polling);
  refresh().finally(() => { polling = setTimeout(poll, POLL_MS); });
}

poll();
