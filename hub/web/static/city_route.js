// The case page's route form (templates/staff/city_route.html): POST /city/route with the
// pick-up centre the resident chose; the page reloads to show where the case went.
(function () {
  const box = document.getElementById("city-route");
  const send = document.getElementById("city-route-send");
  if (!box || !send) return;
  send.addEventListener("click", async () => {
    send.disabled = true;
    const msg = document.getElementById("msg");
    try {
      await ow.post("/city/route", {case: box.dataset.case,
                                    pickup: document.getElementById("city-pickup").value});
      location.reload();
    } catch (e) {
      if (msg) msg.textContent = e.message;
      send.disabled = false;
    }
  });
})();
