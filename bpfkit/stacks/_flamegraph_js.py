"""The script embedded in bpfkit's SVG flame graphs (hover details, click-to-zoom, regex search).

``__FGID__`` is replaced by the id of the ``<svg>`` element, so several graphs can share a page.
The script keeps every frame's geometry in weight units (``data-x``, ``data-v``, ``data-d``) and
recomputes pixels on zoom, so zooming is exact however often it is repeated. It exposes
``window.bpfkitFlameGraphs[id] = {zoom(name), reset(), search(regex), clearSearch()}`` for
automation (the tests drive it in a headless browser).
"""

SCRIPT = r"""
(function () {
  "use strict";
  var svg = document.getElementById("__FGID__");
  if (!svg) { return; }
  var q = function (s) { return document.getElementById("__FGID__-" + s); };
  var total = parseFloat(svg.getAttribute("data-total"));
  var xpad = parseFloat(svg.getAttribute("data-xpad"));
  var full = parseFloat(svg.getAttribute("data-width"));
  var fontSize = parseFloat(svg.getAttribute("data-font-size"));
  var minWidth = parseFloat(svg.getAttribute("data-min-width"));
  var details = q("details"), matched = q("matched"), resetBtn = q("reset"), searchBtn = q("search");
  var frames = [];
  var groups = q("frames").getElementsByTagName("g");
  for (var i = 0; i < groups.length; i++) {
    var g = groups[i];
    var title = g.getElementsByTagName("title")[0].textContent;
    frames.push({
      g: g, rect: g.getElementsByTagName("rect")[0], text: g.getElementsByTagName("text")[0],
      name: title.split("\n")[0], info: title.replace("\n", " (") + ")",
      x: parseFloat(g.getAttribute("data-x")), v: parseFloat(g.getAttribute("data-v")),
      d: parseInt(g.getAttribute("data-d"), 10), fill: null
    });
  }
  var zoomed = null, searchRe = null;

  function fit(f, width) {
    var chars = Math.floor((width - 6) / (fontSize * 0.59));
    if (chars < 3) { return ""; }
    return f.name.length <= chars ? f.name : f.name.substring(0, chars - 2) + "..";
  }

  function place(f, x0, v0) {
    var x = xpad + (f.x - x0) / v0 * full, w = f.v / v0 * full;
    f.rect.setAttribute("x", x.toFixed(2));
    f.rect.setAttribute("width", w.toFixed(2));
    f.text.setAttribute("x", (x + 3).toFixed(2));
    f.text.textContent = fit(f, w);
    return w;
  }

  function zoomTo(target) {
    zoomed = target;
    var x0 = target.x, v0 = target.v, eps = v0 * 1e-9;
    for (var i = 0; i < frames.length; i++) {
      var f = frames[i];
      f.g.classList.remove("hide", "anc");
      if (f.d < target.d && f.x <= x0 + eps && f.x + f.v >= x0 + v0 - eps) {
        f.g.classList.add("anc");   // an ancestor: spans the whole width, faded
        f.rect.setAttribute("x", xpad.toFixed(2));
        f.rect.setAttribute("width", full.toFixed(2));
        f.text.setAttribute("x", (xpad + 3).toFixed(2));
        f.text.textContent = fit(f, full);
      } else if (f.d >= target.d && f.x >= x0 - eps && f.x + f.v <= x0 + v0 + eps) {
        if (place(f, x0, v0) < minWidth) { f.g.classList.add("hide"); }
      } else {
        f.g.classList.add("hide");
      }
    }
    resetBtn.classList.remove("hide");
    if (searchRe) { search(searchRe); }
  }

  function reset() {
    zoomed = null;
    for (var i = 0; i < frames.length; i++) {
      frames[i].g.classList.remove("hide", "anc");
      place(frames[i], 0, total);
    }
    resetBtn.classList.add("hide");
    if (searchRe) { search(searchRe); }
  }

  function search(re) {
    if (typeof re === "string") { re = new RegExp(re); }
    clearSearch();
    searchRe = re;
    var hits = [];
    for (var i = 0; i < frames.length; i++) {
      var f = frames[i];
      if (f.d > 0 && re.test(f.name)) {
        f.fill = f.rect.getAttribute("fill");
        f.rect.setAttribute("fill", "rgb(230,0,230)");
        hits.push([f.x, f.x + f.v]);
      }
    }
    // nested matches (recursion) must not count twice: merge the covered intervals
    hits.sort(function (a, b) { return a[0] - b[0]; });
    var sum = 0, end = -Infinity;
    for (var k = 0; k < hits.length; k++) {
      var s = Math.max(hits[k][0], end), e = hits[k][1];
      if (e > s) { sum += e - s; }
      end = Math.max(end, e);
    }
    var base = zoomed ? zoomed.v : total;
    var lo = zoomed ? zoomed.x : 0;
    if (zoomed) {  // the share of what is on screen
      sum = 0; end = -Infinity;
      for (var m = 0; m < hits.length; m++) {
        var s2 = Math.max(hits[m][0], end, lo), e2 = Math.min(hits[m][1], lo + base);
        if (e2 > s2) { sum += e2 - s2; }
        end = Math.max(end, hits[m][1]);
      }
    }
    matched.textContent = hits.length ? "Matched: " + (100 * sum / base).toFixed(2) + "%" : "No match";
    searchBtn.textContent = "Reset Search";
    return { frames: hits.length, percent: 100 * sum / base };
  }

  function clearSearch() {
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].fill !== null) { frames[i].rect.setAttribute("fill", frames[i].fill); frames[i].fill = null; }
    }
    searchRe = null;
    matched.textContent = " ";
    searchBtn.textContent = "Search";
  }

  function frameOf(evt) {
    var el = evt.target;
    while (el && el !== svg) {
      if (el.classList && el.classList.contains("f")) {
        for (var i = 0; i < frames.length; i++) { if (frames[i].g === el) { return frames[i]; } }
      }
      el = el.parentNode;
    }
    return null;
  }

  function askSearch() {
    if (searchRe) { clearSearch(); return; }
    var term = window.prompt("Search for (regular expression):", "");
    if (term) {
      try { search(new RegExp(term)); } catch (e) { matched.textContent = "Bad regular expression"; }
    }
  }

  svg.addEventListener("mouseover", function (evt) {
    var f = frameOf(evt);
    if (f) { details.textContent = f.info; }
  });
  svg.addEventListener("mouseout", function (evt) {
    if (frameOf(evt)) { details.textContent = " "; }
  });
  svg.addEventListener("click", function (evt) {
    var f = frameOf(evt);
    if (f) { if (f.d === 0) { reset(); } else { zoomTo(f); } }
  });
  resetBtn.addEventListener("click", function (evt) { evt.stopPropagation(); reset(); });
  searchBtn.addEventListener("click", function (evt) { evt.stopPropagation(); askSearch(); });
  window.addEventListener("keydown", function (evt) {
    if ((evt.key === "f" && (evt.ctrlKey || evt.metaKey)) || (evt.key === "/" && !evt.ctrlKey)) {
      evt.preventDefault();
      askSearch();
    } else if (evt.key === "Escape") {
      clearSearch();
    }
  });

  window.bpfkitFlameGraphs = window.bpfkitFlameGraphs || {};
  window.bpfkitFlameGraphs["__FGID__"] = {
    zoom: function (name) {
      for (var i = 0; i < frames.length; i++) { if (frames[i].name === name) { zoomTo(frames[i]); return true; } }
      return false;
    },
    reset: reset,
    search: search,
    clearSearch: clearSearch,
    frames: function () {
      var out = [];
      for (var i = 0; i < frames.length; i++) {
        var f = frames[i];
        if (!f.g.classList.contains("hide")) {
          out.push({ name: f.name, x: parseFloat(f.rect.getAttribute("x")), width: parseFloat(f.rect.getAttribute("width")),
                     fill: f.rect.getAttribute("fill"), label: f.text.textContent });
        }
      }
      return out;
    }
  };
  svg.setAttribute("data-ready", "1");  // the script ran to the end (tests look for it)
})();
"""
