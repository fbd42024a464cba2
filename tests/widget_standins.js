// Stand-ins for the vendors' widget scripts, which cannot load without the internet: each
// defines the vendor's documented client API (the calls our snippets make) and records what it
// was asked, in window.standin. Served as /standins.js?vendor=NAME[&onload=CALLBACK].
(function () {
  var url = new URL(document.currentScript.src);
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

  if (onload) window[onload]();
})();
