// Blind review page: keyboard judgements, saved the moment they are given.
(function () {
  "use strict";
  const items = JSON.parse(document.getElementById("items").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const comment = $("comment");
  const keys = { "1": "A", "2": "B", t: "tie", s: "skip" };
  let busy = false;
  let idx = items.findIndex((it) => !it.choice);
  if (idx < 0) idx = items.length;

  function labelled() { return items.filter((it) => it.choice).length; }

  function render() {
    const n = labelled();
    $("bar").style.width = (items.length ? (100 * n) / items.length : 100) + "%";
    $("progress-text").textContent = n + " of " + items.length + " judged";
    const done = idx >= items.length;
    $("done").hidden = !done;
    $("item").hidden = done;
    $("where").textContent = done ? "" : "item " + (idx + 1) + " of " + items.length;
    if (done) return;
    const it = items[idx];
    $("input").textContent = it.input;
    if ($("reference")) $("reference").textContent = it.reference || "";
    $("out-A").textContent = it.a;
    $("out-B").textContent = it.b;
    comment.value = it.comment || "";
    $("side-A").classList.toggle("chosen", it.choice === "A");
    $("side-B").classList.toggle("chosen", it.choice === "B");
    $("state").textContent = it.choice ? "(your answer: " + it.choice + ")" : "";
  }

  function nextOpen(from) {
    for (let k = from + 1; k < items.length; k++) if (!items[k].choice) return k;
    for (let k = 0; k < items.length; k++) if (!items[k].choice) return k;
    return items.length;
  }

  async function choose(choice) {
    if (busy || idx >= items.length) return;
    busy = true;
    const it = items[idx];
    try {
      const resp = await fetch("/review/label", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ position: it.position, choice: choice, comment: comment.value }),
      });
      if (!resp.ok) throw new Error((await resp.json()).error || resp.statusText);
      it.choice = choice;
      it.comment = comment.value;
      $("error").textContent = "";
      idx = nextOpen(idx);
    } catch (err) {
      $("error").textContent = "not saved: " + err.message + " (try again)";
    } finally {
      busy = false;
      render();
      document.body.dataset.saved = String(labelled());
    }
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.target === comment) {
      if (ev.key === "Escape") comment.blur();
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (keys[ev.key]) { ev.preventDefault(); choose(keys[ev.key]); }
    else if (ev.key === "c") { ev.preventDefault(); comment.focus(); }
    else if (ev.key === "ArrowLeft" && idx > 0) { idx -= 1; render(); }
    else if (ev.key === "ArrowRight" && idx < items.length) { idx += 1; render(); }
  });
  render();
  document.body.dataset.saved = String(labelled());
})();
