// Periscope console: live countdowns of grants. No inline script anywhere:
// this file is served from /static/console.js under a CSP of 'self'.
//
// The server renders <time class="countdown" data-remaining="SECONDS">; we
// count down from the moment the element is first seen (page load or htmx
// swap), so the browser's own clock never matters.
(function () {
  "use strict";
  var seen = new WeakMap();

  function text(left) {
    if (left <= 0) return "expiring…";
    var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    if (h > 0) return h + "h " + m + "m " + s + "s left";
    if (m > 0) return m + "m " + s + "s left";
    return s + "s left";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("time.countdown[data-remaining]").forEach(function (el) {
      var deadline = seen.get(el);
      if (deadline === undefined) {
        deadline = now + 1000 * parseInt(el.getAttribute("data-remaining"), 10);
        seen.set(el, deadline);
      }
      el.textContent = text(Math.max(0, Math.round((deadline - now) / 1000)));
    });
  }

  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSettle", tick);
  setInterval(tick, 1000);
})();
