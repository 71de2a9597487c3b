// The inferpack console: sends an image to the service's own EasyDL route and shows the answer.
// Served with a Content-Security-Policy that allows only same-origin scripts, styles and fetches.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;

function text(id, value) {
  $(id).textContent = value;
}

function showError(message) {
  $("error").hidden = !message;
  text("error", message || "");
}

async function loadInfo() {
  info = await (await fetch("/info")).json();
  const engine = info.engine || {};
  const lic = info.license || {};
  text("deploy", info.deploy_name);
  text("model", `${info.model.name} ${info.model.version}`);
  text("task", info.task);
  text("labels", info.model.labels.join(", "));
  text("engine", [engine.backend, engine.device, engine.precision].filter(Boolean).join(" · ") || "loading");
  if (!lic.required) {
    text("license", "not enforced (development mode)");
  } else if (lic.valid) {
    text("license", `valid, ${lic.days_left} days left`);
  } else {
    text("license", `invalid: ${lic.reason}`);
  }
  const detection = info.task === "detection";
  $("top-num-field").hidden = detection;
  $("threshold-field").hidden = !detection;
}

function base64Of(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function listResults(results) {
  const list = $("results");
  list.replaceChildren();
  for (const r of results) {
    const item = document.createElement("li");
    item.className = "result";
    item.dataset.name = r.name;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = r.name;
    const bar = document.createElement("meter");
    bar.min = 0;
    bar.max = 1;
    bar.value = r.score;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = r.score.toFixed(4);
    item.append(name, bar, score);
    if (r.location) {
      const where = document.createElement("span");
      const box = r.location;
      where.textContent = ` at ${box.left},${box.top} ${box.width}×${box.height}`;
      item.append(where);
    }
    list.append(item);
  }
}

async function drawImage(file, results) {
  const canvas = $("canvas");
  delete canvas.dataset.boxes;
  const bitmap = await createImageBitmap(file);
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  const line = Math.max(2, Math.round(Math.max(bitmap.width, bitmap.height) / 300));
  const font = 6 * line + 4;
  ctx.font = `${font}px system-ui, sans-serif`;
  ctx.lineWidth = line;
  let boxes = 0;
  for (const r of results) {
    if (!r.location) continue;
    const { left, top, width, height } = r.location;
    const label = `${r.name} ${r.score.toFixed(2)}`;
    ctx.strokeStyle = "#ffc800";
    ctx.strokeRect(left, top, width, height);
    const labelTop = Math.max(0, top - font - 4);
    ctx.fillStyle = "#ffc800";
    ctx.fillRect(left, labelTop, ctx.measureText(label).width + 8, font + 4);
    ctx.fillStyle = "#000";
    ctx.fillText(label, left + 4, labelTop + font);
    boxes += 1;
  }
  canvas.dataset.boxes = String(boxes);
}

async function predict(file) {
  showError("");
  $("results").replaceChildren();
  document.body.dataset.state = "busy";
  try {
    const body = { image: await base64Of(file) };
    if (info.task === "detection") {
      body.threshold = Number($("threshold").value);
    } else {
      body.top_num = Number($("top-num").value);
    }
    const route = info.route.split(" ")[1];
    const response = await fetch(route, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    text("json", JSON.stringify(answer, null, 2));
    if (answer.error_code) {
      showError(`${answer.error_code} ${answer.error_msg}`);
      return;
    }
    listResults(answer.results);
    await drawImage(file, answer.results);
  } catch (err) {
    showError(`request failed: ${err}`);
  } finally {
    document.body.dataset.state = "done";
    refreshMetrics();
  }
}

// Prometheus text format: name{label="value",...} number
function parseMetrics(body) {
  const samples = [];
  for (const line of body.split("\n")) {
    const match = /^([a-z_:]+)(?:\{([^}]*)\})? ([^ ]+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[2] || "").matchAll(/([a-z_]+)="([^"]*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

async function refreshMetrics() {
  if (!info) return;
  const samples = parseMetrics(await (await fetch("/metrics")).text());
  const predictRoutes = new Set(["ImageClassification", "ObjectDetection", "v2_infer", "v2_infer_versioned"]);
  const sum = (name, keep) =>
    samples.filter((s) => s.name === name && keep(s.labels)).reduce((total, s) => total + s.value, 0);
  const isPredict = (labels) => predictRoutes.has(labels.route);
  text("m-requests", String(sum("inferpack_requests_total", isPredict)));
  const errors = new Map();
  for (const s of samples) {
    if (s.name === "inferpack_requests_total" && isPredict(s.labels) && s.labels.error_code !== "0") {
      errors.set(s.labels.error_code, (errors.get(s.labels.error_code) || 0) + s.value);
    }
  }
  text("m-errors", errors.size ? [...errors].map(([code, n]) => `${code}: ${n}`).join(", ") : "none");
  const count = sum("inferpack_request_duration_seconds_count", isPredict);
  const seconds = sum("inferpack_request_duration_seconds_sum", isPredict);
  text("m-latency", count ? `${((1000 * seconds) / count).toFixed(1)} ms` : "–");
  text("m-inflight", String(sum("inferpack_inflight_requests", () => true)));
  text("m-queue", String(sum("inferpack_queue_depth", () => true)));
}

function wire() {
  const file = $("file");
  const drop = $("drop");
  file.addEventListener("change", () => file.files.length && predict(file.files[0]));
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) predict(event.dataTransfer.files[0]);
  });
  $("threshold").addEventListener("input", () => text("threshold-value", Number($("threshold").value).toFixed(2)));
}

wire();
loadInfo()
  .then(() => {
    document.body.dataset.state = "ready";
    refreshMetrics();
    setInterval(refreshMetrics, 2000);
  })
  .catch((err) => showError(`cannot read /info: ${err}`));
