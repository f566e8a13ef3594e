// Periscope console: live countdowns of grants and recording playback. No
// inline script anywhere:
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

// Recording playback. The server renders every output event of a recording
// as <span class="frame" data-t="SECONDS"> inside <pre class="playback">,
// all shown, so the page reads without this script. Step shows the frames
// one by one, Play replays them at their recorded pace (pauses capped at a
// second), Show all shows them all again. The frames are text the server
// escaped; this only toggles their visibility.
(function () {
  "use strict";

  function setup(player) {
    if (player.getAttribute("data-ready")) return;
    player.setAttribute("data-ready", "1");
    var pre = player.nextElementSibling;
    if (!pre || !pre.classList.contains("playback")) return;
    var frames = pre.querySelectorAll(".frame");
    var shown = frames.length, timer = null;
    var position = player.querySelector("[data-position]");

    function show(n) {
      shown = n;
      for (var i = 0; i < frames.length; i++) frames[i].hidden = i >= n;
      if (position) position.textContent = n + " / " + frames.length;
    }
    function stop() { if (timer) { clearTimeout(timer); timer = null; } }
    function time(i) { return parseFloat(frames[i].getAttribute("data-t")) || 0; }
    function next() {
      if (shown >= frames.length) { timer = null; return; }
      show(shown + 1);
      if (shown < frames.length) {
        var wait = Math.min(1, Math.max(0, time(shown) - time(shown - 1))) * 1000;
        timer = setTimeout(next, wait);
      } else {
        timer = null;
      }
    }

    player.querySelector("[data-play]").addEventListener("click", function () {
      stop(); show(0); timer = setTimeout(next, 0);
    });
    player.querySelector("[data-step]").addEventListener("click", function () {
      stop(); show(shown >= frames.length ? 1 : shown + 1);
    });
    player.querySelector("[data-all]").addEventListener("click", function () {
      stop(); show(frames.length);
    });
    player.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
  }

  function init() { document.querySelectorAll(".player").forEach(setup); }
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);
})();
