(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("config").textContent);
  var served = location.protocol === "http:" || location.protocol === "https:";
  document.getElementById("mode").textContent = served
    ? "Served by medswap review --serve: a decision is signed and written as you click."
    : "Opened from disk: a decision downloads as a file; sign it with the command shown.";
  var box = document.getElementById("lightbox"), current = null;
  function show(fig) {
    current = fig;
    var img = fig.querySelector("img:not([hidden])");
    box.querySelector("img").src = img.src;
    box.querySelector("figcaption").textContent =
      fig.querySelector("figcaption").textContent + (img.dataset.kind === "original" ? " (ORIGINAL)" : "");
    box.hidden = false;
  }
  function step(d) {
    if (!current) return;
    var all = Array.prototype.slice.call(current.parentNode.querySelectorAll("figure.still"));
    var next = all[all.indexOf(current) + d];
    if (next) show(next);
  }
  box.addEventListener("click", function () { box.hidden = true; current = null; });
  document.addEventListener("keydown", function (e) {
    if (box.hidden) return;
    if (e.key === "Escape") { box.hidden = true; current = null; }
    if (e.key === "ArrowRight") step(1);
    if (e.key === "ArrowLeft") step(-1);
  });
  document.querySelectorAll("figure.still").forEach(function (fig) {
    fig.addEventListener("click", function (e) {
      if (e.target.classList.contains("show-original")) {
        var orig = fig.querySelector("img.original"), out = fig.querySelector("img.output");
        var showing = !orig.hidden;
        orig.hidden = showing; out.hidden = !showing;
        e.target.textContent = showing ? "show original" : "show output";
        return;
      }
      show(fig);
    });
  });
  function ranges(panel) {
    return Array.prototype.map.call(panel.querySelectorAll(".range-list li"), function (li) {
      return JSON.parse(li.dataset.range);
    });
  }
  function say(panel, ok, text, code) {
    var p = panel.querySelector(".result");
    p.className = "result " + (ok ? "ok" : "err");
    p.textContent = text;
    if (code) { var c = document.createElement("code"); c.textContent = code; p.appendChild(c); }
  }
  document.querySelectorAll(".decision").forEach(function (panel) {
    panel.querySelector(".add-range").addEventListener("click", function () {
      var first = parseInt(panel.querySelector(".r-first").value, 10);
      var last = parseInt(panel.querySelector(".r-last").value, 10);
      if (isNaN(last)) last = first;
      if (isNaN(first) || last < first) { say(panel, false, "A range needs a first and a last frame."); return; }
      var r = { first: first, last: last, decision: panel.querySelector(".r-decision").value,
                note: panel.querySelector(".r-note").value };
      var li = document.createElement("li");
      li.dataset.range = JSON.stringify(r);
      li.textContent = "frames " + first + "-" + last + ": " + r.decision + (r.note ? " (" + r.note + ")" : "") + " ";
      var rm = document.createElement("button");
      rm.type = "button"; rm.textContent = "remove";
      rm.addEventListener("click", function () { li.remove(); });
      li.appendChild(rm);
      panel.querySelector(".range-list").appendChild(li);
    });
    panel.querySelectorAll(".buttons button").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var reviewer = document.getElementById("reviewer").value.trim();
        if (!reviewer) { say(panel, false, "Enter your name at the top first."); return; }
        var decision = { file: panel.dataset.file, sha256: panel.dataset.sha256,
          reviewer: reviewer, decision: btn.dataset.decision,
          note: panel.querySelector(".v-note").value, ranges: ranges(panel) };
        if (served) {
          fetch("decision", { method: "POST", headers: { "Content-Type": "application/json" },
                              body: JSON.stringify(decision) })
            .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
            .then(function (res) {
              var j = res[1];
              if (res[0]) say(panel, true, (j.releasable ? "Approved" : "Held back") +
                " and signed: " + j.manifest + " (key " + j.key_id + ")");
              else say(panel, false, "Not signed: " + j.error);
            })
            .catch(function (e) { say(panel, false, "Not signed: the review server did not answer (" + e + ")"); });
        } else {
          var name = panel.dataset.file.split("/").pop().replace(/\.[^.]*$/, "") + ".decision.json";
          var url = URL.createObjectURL(new Blob([JSON.stringify(decision, null, 1)], { type: "application/json" }));
          var a = document.createElement("a");
          a.href = url; a.download = name; document.body.appendChild(a); a.click(); a.remove();
          say(panel, true, "Decision saved as " + name + " (not signed yet). Sign it with:",
              config.approveCommand.replace("DECISION.json", name));
        }
      });
    });
  });
})();
