// The client half of the proof-of-work captcha (ALTCHA v1): fetch a signed challenge, find
// the number n with hash(salt + n) == challenge using Web Crypto, post it with the form.
"use strict";

const form = document.getElementById("signin");
const solution = document.getElementById("solution");
const verifying = document.getElementById("verifying");
const progress = document.getElementById("progress");
const statusText = document.getElementById("status");
const buttons = form.querySelectorAll("button");
const encoder = new TextEncoder();
// Digests are started in batches: one await per hash would spend most of the time in the
// promise machinery rather than in SHA-256.
const BATCH = 1000;

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

function show(text, done, total) {
  verifying.hidden = false;
  statusText.textContent = text;
  if (total !== undefined) {
    progress.max = total;
    progress.value = done;
  }
}

async function solve(challenge) {
  const max = Number(challenge.maxnumber ?? challenge.maxNumber);
  for (let start = 0; start <= max; start += BATCH) {
    const numbers = [];
    for (let n = start; n <= Math.min(start + BATCH - 1, max); n++) numbers.push(n);
    const digests = await Promise.all(
      numbers.map((n) => crypto.subtle.digest(challenge.algorithm, encoder.encode(challenge.salt + n))),
    );
    const found = digests.findIndex((d) => hex(d) === challenge.challenge);
    if (found >= 0) return numbers[found];
    show(`Verifying… tried ${(start + numbers.length).toLocaleString("en")} of ${max.toLocaleString("en")} numbers`,
      start + numbers.length, max);
  }
  return null;
}

async function verifyAndSubmit(mode) {
  if (!window.crypto || !crypto.subtle) {
    show("Web Crypto works only in a secure context: open this page on 127.0.0.1 or localhost (or over HTTPS).");
    return false;
  }
  show("Verifying… fetching a challenge", 0, 1);
  const response = await fetch(form.dataset.challenge, { cache: "no-store" });
  if (!response.ok) throw new Error(`challenge: HTTP ${response.status}`);
  const challenge = await response.json();
  const began = performance.now();
  const number = await solve(challenge);
  if (number === null) throw new Error("no number solves this challenge");
  const seconds = ((performance.now() - began) / 1000).toFixed(2);
  // A tampered solution claims a number that does not produce the challenge.
  const claimed = mode === "tamper" ? number + 1 : number;
  const payload = {
    algorithm: challenge.algorithm,
    challenge: challenge.challenge,
    number: claimed,
    salt: challenge.salt,
    signature: challenge.signature,
  };
  solution.value = btoa(JSON.stringify(payload));
  show(mode === "tamper"
    ? `Solved (n = ${number}) in ${seconds} s; submitting n = ${claimed} instead…`
    : `Solved: n = ${number} in ${seconds} s. Signing in…`, 1, 1);
  return true;
}

form.addEventListener("submit", async (event) => {
  const mode = event.submitter?.dataset.mode ?? "solve";
  if (mode === "none") {
    solution.disabled = true; // the field is left out of the request altogether
    return;
  }
  event.preventDefault();
  solution.disabled = false;
  buttons.forEach((b) => { b.disabled = true; });
  try {
    if (await verifyAndSubmit(mode)) {
      form.submit();
      return;
    }
  } catch (error) {
    show(`Could not verify: ${error.message}`);
  }
  buttons.forEach((b) => { b.disabled = false; });
});

// Coming back with the browser's back button must not resend an old solution.
window.addEventListener("pageshow", () => {
  solution.value = "";
  solution.disabled = false;
  buttons.forEach((b) => { b.disabled = false; });
});
