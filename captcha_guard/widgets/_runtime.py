"""The page's small shared runtime: ``window.captchaGuard``, defined once however many widgets
a page carries, inlined before each widget's registration (so it runs under the same CSP
nonce and needs no file of its own).

Theory of operation. Each snippet registers its widget (``captchaGuard.add``); the runtime
mounts it as soon as the vendor's API is ready (at once, at ``DOMContentLoaded``, at ``load``,
or when the vendor's ``onload`` callback fires, whichever comes first) and remembers how to
reset it. A widget is reset after every answer that is not 2xx (``captchaGuard.fetch`` and the
``fetch`` variant's form submission), after a network error (the token may have reached the
server), and when the browser restores the page from its back-forward cache (the form there
still holds the token the first submission spent).
"""

from __future__ import annotations

RUNTIME = """(function (w, d) {
if (w.captchaGuard) return;
var all = [];
function pick(el) {
  if (el && typeof el === "string") el = d.getElementById(el);
  return all.filter(function (x) {
    return !el || x.el === el || x.el.contains(el) || el.contains(x.el);
  });
}
function mount(x) {
  if (x.mounted || !x.ready()) return;
  x.mounted = true;
  x.mountFn(x.box, x.o, x);
}
function mountAll() { all.forEach(mount); }
var cg = w.captchaGuard = {
  widgets: all,
  vendorReady: {},
  add: function (el, o, ready, setup, mountFn, resetFn) {
    var x = {el: el, box: d.getElementById(el.id + "-box") || el, o: o, ready: ready,
             mountFn: mountFn, resetFn: resetFn, mounted: false, values: {}, resets: 0};
    x.put = function (name, value) {
      x.values[name] = value || "";
      var input = el.querySelector('input[data-captcha-guard-field="' + name + '"]');
      if (input) input.value = value || "";
    };
    el.captchaGuard = x;
    all.push(x);
    if (o.onload && !w[o.onload]) {
      w[o.onload] = function () { cg.vendorReady[o.onload] = true; mountAll(); };
    }
    setup(x.box, o, x);
    mount(x);
    if (o.mode === "fetch") {
      var form = el.closest("form");
      if (form) form.addEventListener("submit", function (e) {
        e.preventDefault();
        cg.submit(form).catch(function () {});
      });
    }
    return x;
  },
  reset: function (el) {
    pick(el).forEach(function (x) {
      Object.keys(x.values).forEach(function (n) { x.put(n, ""); });
      x.resets += 1;
      if (x.mounted) x.resetFn(x.box, x.o, x);
    });
  },
  fields: function (el) {
    var out = {};
    pick(el).forEach(function (x) {
      var form = x.el.closest("form"), data = form ? new FormData(form) : null;
      x.o.fields.forEach(function (n) {
        var input = x.el.querySelector('[name="' + n + '"]');
        var v = x.values[n] || (input && input.value) || (data && data.get(n)) || "";
        if (typeof v === "string") out[n] = v;
      });
    });
    return out;
  },
  header: function (el) { return new URLSearchParams(cg.fields(el)).toString(); },
  fetch: function (input, init, el) {
    return w.fetch(input, init).then(
      function (r) { if (!r.ok) cg.reset(el); return r; },
      function (e) { cg.reset(el); throw e; });
  },
  submit: function (form) {
    var method = (form.getAttribute("method") || "post").toUpperCase();
    var done = function (detail) {
      form.dispatchEvent(new CustomEvent("captcha-guard:answer", {detail: detail, bubbles: true}));
    };
    var init = {method: method, body: new FormData(form), credentials: "same-origin"};
    return cg.fetch(form.action, init, form)
      .then(function (r) { done({response: r}); return r; },
            function (e) { done({error: e}); throw e; });
  }
};
d.addEventListener("DOMContentLoaded", mountAll);
w.addEventListener("load", mountAll);
w.addEventListener("pageshow", function (e) { if (e.persisted) cg.reset(); });
})(window, document);
"""
# Indentation is for the reader of this file; a page carries each line once per widget.
RUNTIME = "\n".join(line.strip() for line in RUNTIME.splitlines())

__all__ = ["RUNTIME"]
