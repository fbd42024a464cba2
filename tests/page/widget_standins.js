// Stand-ins for the vendors' widget scripts, which cannot load without the internet: each
// defines the vendor's documented client API (the calls our snippets make) and records what it
// was asked, in window.standin. Served as /standins.js?vendor=NAME[&onload=CALLBACK].
(function () {
  // A module script (Friendly Captcha's, Cap's) has no document.currentScript.
  var url = new URL((document.currentScript ||
                     document.querySelector('script[src*="standins.js"]')).src);
  var vendor = url.searchParams.get("vendor");
  var onload = url.searchParams.get("onload");
  var log = window.standin = {vendor: vendor, renders: [], resets: [], solve: null};

  // reCAPTCHA, hCaptcha, Turnstile: render(container, params) -> widget id; reset(widget id).
  // The real widgets write their token into a field of their own inside the container.
  function siteverify(api, fieldName) {
    var next = 0;  // reCAPTCHA's first widget id is 0: a falsy id must still be reset
    window[api] = {
      render: function (container, params) {
        var id = next++;
        log.renders.push({id: id, box: container.id, sitekey: params.sitekey});
        var field = document.createElement("textarea");
        field.name = fieldName;
        field.style.display = "none";
        container.appendChild(field);
        log.solve = function (token) { field.value = token; params.callback(token); };
        return id;
      },
      reset: function (id) {
        log.resets.push(id);
        var field = document.querySelector('[name="' + fieldName + '"]');
        if (field) field.value = "";
      }
    };
  }
  if (vendor === "recaptcha") siteverify("grecaptcha", "g-recaptcha-response");
  if (vendor === "hcaptcha") siteverify("hcaptcha", "h-captcha-response");
  if (vendor === "turnstile") siteverify("turnstile", "cf-turnstile-response");

  // GeeTest v4: initGeetest4(config, handler(captcha)); captcha.appendTo, onSuccess,
  // getValidate, reset.
  if (vendor === "geetest") {
    window.initGeetest4 = function (config, handler) {
      var result = null, success = null;
      log.renders.push({id: "geetest", box: null, sitekey: config.captchaId});
      handler({
        appendTo: function (box) { log.renders[0].box = box.id; },
        onSuccess: function (callback) { success = callback; },
        getValidate: function () { return result; },
        reset: function () { log.resets.push("geetest"); }
      });
      log.solve = function (token) {
        result = {lot_number: token, captcha_output: "out-" + token, pass_token: "pass-" + token,
                  gen_time: "1700000000", captcha_id: config.captchaId};
        success();
      };
    };
  }

  // Alibaba Cloud CAPTCHA 2.0: window.AliyunCaptchaConfig set before the script loads;
  // initAliyunCaptcha({SceneId, element, button, success, getInstance, ...}); instance.refresh.
  if (vendor === "aliyun") {
    window.initAliyunCaptcha = function (options) {
      var config = window.AliyunCaptchaConfig || {};
      log.renders.push({id: "aliyun", box: options.element.slice(1), sitekey: config.prefix,
                        region: config.region, scene: options.SceneId, button: options.button});
      options.getInstance({refresh: function () { log.resets.push("aliyun"); }});
      log.solve = function (token) { options.success(token); };
    };
  }

  // Tencent Cloud Captcha: new TencentCaptcha(appId, callback, options), a pop-up; show();
  // the callback gets {ret, ticket, randstr}; destroy().
  if (vendor === "tencent") {
    window.TencentCaptcha = function (appId, callback) {
      var destroyed = false;
      log.renders.push({id: "tencent", box: null, sitekey: appId});
      this.show = function () {
        log.solve = function (token, randstr) {
          if (!destroyed) callback({ret: 0, ticket: token, randstr: randstr || "@" + token.slice(-3),
                                    CaptchaAppId: appId});
        };
      };
      this.destroy = function () { destroyed = true; log.resets.push("tencent"); };
    };
  }

  // Friendly Captcha: the site scripts render every .frc-captcha element, with a hidden input of
  // their own in it. v2 (@friendlycaptcha/sdk): "frc:widget.complete" with {response},
  // window.frcaptcha.getAllWidgets() -> handles with getElement() and reset(). v1
  // (friendly-challenge): friendlyChallenge.autoWidget.reset().
  function autoRender(fieldName, complete) {
    var handles = [];
    document.querySelectorAll(".frc-captcha").forEach(function (el) {
      var field = document.createElement("input");
      field.type = "hidden";
      field.name = fieldName;
      el.appendChild(field);
      log.renders.push({id: vendor, box: el.id, sitekey: el.dataset.sitekey,
                        endpoint: el.dataset.apiEndpoint});
      handles.push({
        getElement: function () { return el; },
        reset: function () { log.resets.push(vendor); field.value = ""; }
      });
      log.solve = function (token) {
        field.value = token;
        if (complete) el.dispatchEvent(new CustomEvent(complete, {detail: {response: token}}));
      };
    });
    return handles;
  }
  if (vendor === "friendly-captcha") {
    var handles = autoRender("frc-captcha-response", "frc:widget.complete");
    window.frcaptcha = {getAllWidgets: function () { return handles.slice(); }};
  }
  if (vendor === "friendly-captcha-v1") {
    var widgets = autoRender("frc-captcha-solution", null);
    window.friendlyChallenge = {autoWidget: widgets[widgets.length - 1]};
  }

  // Cap: the <cap-widget> element; inside a form it adds a hidden cap-token input, fires
  // "solve" with {token}; reset() clears the token and fires "reset".
  if (vendor === "cap") {
    customElements.define("cap-widget", class extends HTMLElement {
      connectedCallback() {
        if (this.field) return;
        var field = this.field = document.createElement("input");
        field.type = "hidden";
        field.name = this.getAttribute("data-cap-hidden-field-name") || "cap-token";
        if (this.closest("form")) this.appendChild(field);
        log.renders.push({id: "cap", box: this.id,
                          sitekey: this.getAttribute("data-cap-api-endpoint")});
        var self = this;
        log.solve = function (token) {
          field.value = token;
          self.dispatchEvent(new CustomEvent("solve", {detail: {token: token}}));
        };
      }
      reset() {
        log.resets.push("cap");
        this.field.value = "";
        this.dispatchEvent(new CustomEvent("reset", {detail: {}}));
      }
    });
  }

  if (onload) window[onload]();
})();
