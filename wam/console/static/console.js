// The console's one script: live frames and states on the fleet page, emergency stops with a confirmation.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  async function post(url) {
    const answer = await fetch(url, {method: "POST", headers: {"X-CSRF-Token": csrf}, credentials: "same-origin"});
    if (!answer.ok) {
      const problem = await answer.json().catch(() => ({detail: answer.statusText}));
      alert("refused: " + problem.detail);
    }
    return answer;
  }

  function show(robot) {
    const card = document.querySelector('article.robot[data-robot="' + CSS.escape(robot.id) + '"]');
    if (!card) return;
    card.querySelector(".status").textContent = robot.status;
    card.querySelector(".task").textContent = robot.task || "-";
    card.querySelector(".lease").textContent = robot.lease_holder || "free";
    card.querySelector(".estopped").textContent = robot.estopped ? "STOPPED" : "no";
    card.querySelector(".steps").textContent = robot.steps;
    card.classList.toggle("stopped", robot.estopped);
  }

  async function refreshStates() {
    const answer = await fetch("/console/fleet.json", {credentials: "same-origin"});
    if (answer.status === 401) { window.location = "/console/signin"; return; }
    if (answer.ok) (await answer.json()).forEach(show);
  }

  function refreshFrames() {
    document.querySelectorAll("img.frame").forEach(function (img) {
      if (img.dataset.loading === "1") return;
      const next = new Image();
      img.dataset.loading = "1";
      next.onload = function () { img.src = next.src; img.dataset.loading = "0";
        img.dataset.frames = String(Number(img.dataset.frames || 0) + 1); };
      next.onerror = function () { img.dataset.loading = "0"; };
      next.src = "/console/robots/" + encodeURIComponent(img.dataset.robot) + "/frame.png?t=" + Date.now();
    });
  }

  document.querySelectorAll("button.estop").forEach(function (button) {
    button.addEventListener("click", async function () {
      const robot = button.dataset.robot;
      if (!confirm("Emergency stop " + robot + " (" + button.dataset.env + ")? It stops before its next action; " +
                   "a task running on it is cut.")) return;
      const answer = await post("/console/robots/" + encodeURIComponent(robot) + "/estop");
      if (answer.ok) show(await answer.json());
    });
  });
  const fleetButton = document.querySelector("button.estop-fleet");
  if (fleetButton) fleetButton.addEventListener("click", async function () {
    const count = document.querySelectorAll("article.robot").length;
    if (!confirm("Emergency stop every robot shown here (" + count + ")?")) return;
    const answer = await post("/console/fleet/estop");
    if (answer.ok) (await answer.json()).forEach(show);
  });

  if (document.querySelector("section.fleet")) {
    setInterval(refreshStates, 1000);
    setInterval(refreshFrames, 300);
  }
})();
