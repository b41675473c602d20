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
    card.querySelector(".lease").textContent = robot.lease_holder ?
      robot.lease_holder + " (" + Math.round(robot.lease_left_s) + " s left)" : "free";
    const release = card.querySelector("button.release");
    if (release) release.hidden = !robot.estopped;
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
  document.querySelectorAll("button.release").forEach(function (button) {
    button.addEventListener("click", async function () {
      if (!confirm("Release your emergency stop on " + button.dataset.robot + "? It may move again.")) return;
      const answer = await post("/console/robots/" + encodeURIComponent(button.dataset.robot) + "/estop/release");
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

// Episode pages: plots of every low-dimensional series, with a cursor that follows the first video's time.
(function () {
  "use strict";
  const holder = document.querySelector(".plots[data-source]");
  if (!holder) return;
  const colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const plots = [];
  fetch(holder.dataset.source, {credentials: "same-origin"}).then(r => r.json()).then(function (data) {
    Object.entries(data.series).forEach(function ([name, series]) {
      const figure = document.createElement("figure");
      const canvas = document.createElement("canvas");
      canvas.width = 520; canvas.height = 150; canvas.className = "plot"; canvas.dataset.series = name;
      const caption = document.createElement("figcaption");
      caption.textContent = name + (series.names.length > 1 ? " (" + series.names.slice(0, 10).join(", ") + ")" : "");
      figure.append(canvas, caption); holder.append(figure);
      plots.push({canvas: canvas, values: series.values});
    });
    holder.dataset.fps = data.fps; holder.dataset.length = data.length;
    requestAnimationFrame(draw);
  });

  function draw() {
    const video = document.querySelector("video.camera");
    const fps = Number(holder.dataset.fps) || 10, length = Number(holder.dataset.length) || 1;
    const frame = video ? Math.min(length - 1, Math.floor(video.currentTime * fps)) : 0;
    holder.dataset.cursor = String(frame);
    plots.forEach(function (plot) {
      const context = plot.canvas.getContext("2d"), w = plot.canvas.width, h = plot.canvas.height;
      const flat = plot.values.flat(), low = Math.min(...flat), high = Math.max(...flat), span = (high - low) || 1;
      context.clearRect(0, 0, w, h);
      const x = i => 4 + (w - 8) * i / Math.max(1, plot.values.length - 1);
      const y = v => h - 4 - (h - 8) * (v - low) / span;
      for (let d = 0; d < plot.values[0].length; d++) {
        context.strokeStyle = colours[d % colours.length]; context.beginPath();
        plot.values.forEach(function (row, i) { if (i === 0) context.moveTo(x(i), y(row[d])); else context.lineTo(x(i), y(row[d])); });
        context.stroke();
      }
      context.strokeStyle = "#000"; context.beginPath(); context.moveTo(x(frame), 0); context.lineTo(x(frame), h); context.stroke();
    });
    requestAnimationFrame(draw);
  }
})();

// Run pages: training curves, one plot per metric of each stage (log scale where values span a decade or more).
(function () {
  "use strict";
  const holder = document.querySelector(".curves[data-source]");
  if (!holder) return;
  fetch(holder.dataset.source).then(r => r.json()).then(function (stages) {
    let drawn = 0;
    Object.entries(stages).forEach(function ([stage, metrics]) {
      Object.entries(metrics).forEach(function ([name, points]) {
        if (points.length < 2 || name === "lr" || name.endsWith("_per_s")) return;
        const figure = document.createElement("figure"), canvas = document.createElement("canvas");
        canvas.width = 360; canvas.height = 140; canvas.className = "plot curve";
        const caption = document.createElement("figcaption");
        caption.textContent = stage + ": " + name;
        figure.append(canvas, caption); holder.append(figure);
        const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
        const positive = ys.every(v => v > 0), logScale = positive && Math.max(...ys) / Math.min(...ys) >= 10;
        const f = v => logScale ? Math.log10(v) : v;
        const low = Math.min(...ys.map(f)), high = Math.max(...ys.map(f)), span = (high - low) || 1;
        const x0 = Math.min(...xs), xspan = (Math.max(...xs) - x0) || 1;
        const context = canvas.getContext("2d");
        context.strokeStyle = "#1f77b4"; context.beginPath();
        points.forEach(function (p, i) {
          const x = 4 + (canvas.width - 8) * (p[0] - x0) / xspan, y = canvas.height - 4 - (canvas.height - 8) * (f(p[1]) - low) / span;
          if (i === 0) context.moveTo(x, y); else context.lineTo(x, y);
        });
        context.stroke();
        drawn += 1;
      });
    });
    holder.dataset.plots = String(drawn);
  });
})();
