// The console's few lines of script: select-all, bulk actions in steps with progress, the
// CSV import with its streamed progress, and a busy label on long actions. Every page
// works without it except the import (it sends the file as the request body).
"use strict";
(() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const STEP = 25; // deliveries per request of a bulk action

  function show(form, done, total, text) {
    const box = form.querySelector(".progress");
    if (!box) return;
    box.hidden = false;
    const bar = box.querySelector("progress");
    bar.max = total || 1;
    bar.value = done;
    box.querySelector(".count").textContent = text;
  }

  function flash(kind, message) {
    const p = document.createElement("p");
    p.className = `flash flash-${kind}`;
    p.textContent = message;
    document.getElementById("flash").replaceChildren(p);
  }

  async function post(url, body, headers = {}) {
    return fetch(url, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf(), ...headers },
    });
  }

  async function errorOf(answer) {
    try {
      const body = await answer.json();
      return body.error?.message || answer.statusText;
    } catch {
      return `${answer.status} ${answer.statusText}`;
    }
  }

  // the page again, without a reload: the list shows what the action changed
  async function refresh() {
    const html = await (await fetch(location.href, { credentials: "same-origin" })).text();
    const fresh = new DOMParser().parseFromString(html, "text/html");
    const kept = document.getElementById("flash").cloneNode(true);
    document.querySelector("main").replaceWith(fresh.querySelector("main"));
    document.getElementById("flash").replaceWith(kept);
  }

  document.addEventListener("change", (event) => {
    const all = event.target.closest("[data-select-all]");
    if (!all) return;
    for (const box of document.querySelectorAll('input[name="ids"][form="bulk"]')) {
      box.checked = all.checked;
    }
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    // what cannot simply be replayed asks first (a rejection, a pause, a deleted mapping)
    const question = event.submitter?.dataset.confirm || form.dataset.confirm;
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    if (form.matches("[data-bulk]")) {
      event.preventDefault();
      // formAction is the page's own URL when the button has no formaction of its own
      const button = event.submitter;
      const url = button?.hasAttribute("formaction") ? button.formAction : form.action;
      const ids = [...document.querySelectorAll('input[name="ids"][form="bulk"]:checked')].map((b) => b.value);
      if (!ids.length) return flash("error", "Select at least one delivery.");
      const note = form.querySelector('input[name="note"]')?.value || "";
      const buttons = form.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      const messages = [];
      let done = 0;
      show(form, 0, ids.length, `0 of ${ids.length}`);
      for (let i = 0; i < ids.length; i += STEP) {
        const body = new URLSearchParams();
        ids.slice(i, i + STEP).forEach((id) => body.append("ids", id));
        if (note) body.append("note", note);
        const answer = await post(url, body);
        if (!answer.ok) {
          flash("error", `Stopped after ${done} of ${ids.length}: ${await errorOf(answer)}`);
          buttons.forEach((b) => (b.disabled = false));
          return;
        }
        messages.push((await answer.json()).message);
        done = Math.min(ids.length, i + STEP);
        show(form, done, ids.length, `${done} of ${ids.length}`);
      }
      flash("ok", `Done, ${done} of ${ids.length}: ${messages.join(" ")}`);
      await refresh();
    } else if (form.matches("[data-import]")) {
      event.preventDefault();
      const file = form.querySelector('input[type="file"]').files[0];
      if (!file) return;
      const replace = form.querySelector('input[name="replace"]').checked;
      const url = `${form.action}${replace ? "?replace=true" : ""}`;
      form.querySelector("button").disabled = true;
      show(form, 0, 1, "checking the file…");
      const answer = await post(url, file, {
        "Content-Type": "text/csv",
        Accept: "application/x-ndjson",
      });
      form.querySelector("button").disabled = false;
      if (!answer.ok) return flash("error", `Import refused: ${await errorOf(answer)}`);
      const reader = answer.body.getReader();
      const decoder = new TextDecoder();
      let buffered = "";
      for (;;) {
        const { value, done } = await reader.read();
        buffered += decoder.decode(value || new Uint8Array(), { stream: !done });
        const lines = buffered.split("\n");
        buffered = lines.pop();
        for (const line of lines.filter(Boolean)) {
          const step = JSON.parse(line);
          if (step.stage === "done") {
            const r = step.result;
            show(form, 1, 1, "done");
            flash("ok", `Imported: ${r.updated} stored, ${r.deleted} deleted, ${r.released_deliveries.length} parked deliveries released.`);
            await refresh();
          } else if (step.stage === "failed") {
            flash("error", step.error.message);
          } else {
            show(form, step.done, step.total, `${step.stage}: ${step.done} of ${step.total}`);
          }
        }
        if (done) break;
      }
    } else if (form.matches("[data-busy]")) {
      const button = form.querySelector("button");
      // disabled after this event, or the browser would not send the form
      setTimeout(() => {
        button.disabled = true;
        button.textContent = form.dataset.busy;
      });
    }
  });
})();
