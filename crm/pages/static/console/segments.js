// The segment builder without page reloads: the count (role=status) and sample follow every change,
// and Add / Remove redraw the rules in place. Without this script the same buttons submit the form.
(function () {
  "use strict";
  var form = document.getElementById("segment-form");
  if (!form || !window.fetch) return;
  var status = document.getElementById("segment-count");
  var sample = document.getElementById("segment-sample");
  var timer = null;
  var seq = 0;

  function encoded(extra) {
    var data = new FormData(form);
    Object.keys(extra || {}).forEach(function (k) { data.set(k, extra[k]); });
    return new URLSearchParams(data);
  }

  function parts(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }

  function post(url, extra) {
    return fetch(url, {method: "POST", body: encoded(extra), credentials: "same-origin",
                       headers: {"X-Requested-With": "fetch"}});
  }

  function usable(r) {  // a redirect means the session ended: let the full page take over
    return !r.redirected && (r.ok || r.status === 400);
  }

  function count() {
    var mine = ++seq;
    form.setAttribute("aria-busy", "true");
    post("/staff/segments/count").then(function (r) {
      if (!usable(r)) { throw new Error("session"); }
      return r.text();
    }).then(function (html) {
      if (mine !== seq) return;  // a newer count is on its way
      var got = parts(html);
      var c = got.getElementById("segment-count-body");
      var s = got.getElementById("segment-sample-body");
      if (c) status.innerHTML = c.innerHTML;
      if (s) sample.innerHTML = s.innerHTML;
      var j = got.getElementById("segment-rules-body");
      var shown = document.getElementById("segment-rules");
      if (j && shown) shown.textContent = j.textContent;
    }).catch(function () {
      if (mine === seq) status.textContent = "The count could not be updated; press Count.";
    }).then(function () {
      if (mine === seq) form.removeAttribute("aria-busy");
    });
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(count, 250);
  }

  function focusIn(node) {
    if (!node) return;
    var field = node.querySelector("input:not([type=hidden]), select, textarea, button");
    if (field) field.focus();
  }

  form.addEventListener("change", function (e) {
    if (!/\.add$/.test(e.target.name || "") && e.target.name !== "name" && e.target.name !== "description") soon();
  });
  form.addEventListener("input", function (e) {
    if (e.target.matches("input:not([type=checkbox]):not([type=radio])") && e.target.name !== "name") soon();
  });
  form.addEventListener("click", function (e) {
    var button = e.target.closest("button[name=action]");
    if (!button || !/^(add|remove):/.test(button.value)) return;
    e.preventDefault();
    var parent = button.value.slice(button.value.indexOf(":") + 1).replace(/-\d+$/, "");
    post("/staff/segments/builder", {action: button.value}).then(function (r) {
      if (!usable(r)) { throw new Error("session"); }
      return r.text();
    }).then(function (html) {
      var fresh = parts(html).getElementById("builder-body");
      document.getElementById("builder-body").replaceWith(fresh);
      var added = fresh.querySelector("[data-focus]");
      if (added) { focusIn(added); } else {
        var group = document.getElementById(parent + ".add");
        if (group) group.focus();
      }
      count();
    }).catch(function () {
      form.requestSubmit(button);
    });
  });
})();
