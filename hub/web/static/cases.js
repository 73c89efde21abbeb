// The back office's promised items (hub/web/cases.py): each case's own form (a row of the
// queue, or the case page) sends its action with its own reason, the materials ticked for
// a return (补正) and the department chosen for a reassignment; the hub's refusal (zh / en)
// is shown beside that case's buttons, and nothing changed.
(() => {
  "use strict";
  for (const form of document.querySelectorAll(".case-form")) {
    const msg = form.querySelector(".case-msg");
    for (const b of form.querySelectorAll("button[data-action]")) {
      b.addEventListener("click", async () => {
        const reason = form.querySelector(".case-reason");
        const dept = form.querySelector(".case-department");
        const action = b.dataset.action;
        const body = {reason: reason ? reason.value : ""};
        if (action === "returned") {
          body.materials = [...form.querySelectorAll('input[name="material"]:checked')]
            .map((x) => Number(x.value));
        }
        if (action === "reassigned") body.department = dept ? dept.value : "";
        if (msg) msg.textContent = "";
        try {
          await ow.post("/cases/" + encodeURIComponent(form.dataset.case) + "/" + action, body);
          location.reload();
        } catch (e) {
          if (e.status === 401) {
            location.href = "/login?next=" + encodeURIComponent(location.pathname);
            return;
          }
          if (msg) msg.textContent = (e.data && e.data.msg) || e.message;
        }
      });
    }
  }
})();
