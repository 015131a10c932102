// The NEATify dashboard: polls /api/state about once a second for what is new and redraws. Plain SVG, no library.
// A number the server could not send (not finite) comes as null: shown as "-", left out of the charts as a gap.
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const W = 600, H = 260, PAD = 34, SHOWN = 500;  // chart size (viewBox units); generations plotted at most
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac"];
let history = [];
let championShown = null;

function text(id, value) { document.getElementById(id).textContent = value; }
function fmt(x, digits = 4) { return Number.isFinite(x) ? x.toPrecision(digits) : "-"; }
function seconds(x) { return Number.isFinite(x) ? x.toFixed(1) : "-"; }

function node(name, attrs, parent) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

// Scales mapping generations and values onto the chart, with a few axis labels.
function frame(svg, gens, low, high) {
  svg.replaceChildren();
  if (high === low) { high = low + 1; }
  const g0 = gens[0], g1 = Math.max(gens[gens.length - 1], g0 + 1);
  const x = g => PAD + (g - g0) / (g1 - g0) * (W - PAD - 8);
  const y = v => H - 20 - (v - low) / (high - low) * (H - 30);
  node("line", {x1: PAD, y1: H - 20, x2: W - 8, y2: H - 20, stroke: "#999"}, svg);
  for (const [v, label] of [[low, fmt(low, 3)], [high, fmt(high, 3)]]) {
    node("text", {x: 2, y: y(v) + 4, "font-size": 10}, svg).textContent = label;
  }
  node("text", {x: PAD, y: H - 4, "font-size": 10}, svg).textContent = "gen " + g0;
  node("text", {x: W - 60, y: H - 4, "font-size": 10}, svg).textContent = "gen " + gens[gens.length - 1];
  return {x, y};
}

// The runs of consecutive rows whose `key` is a finite number (a line is broken where it is not).
function finiteRuns(rows, key) {
  const runs = [[]];
  for (const r of rows) {
    if (Number.isFinite(r[key])) runs[runs.length - 1].push(r);
    else if (runs[runs.length - 1].length) runs.push([]);
  }
  return runs.filter(run => run.length);
}

function drawFitness(rows) {
  const svg = document.getElementById("fitness");
  const values = rows.flatMap(r => [r.best, r.mean]).filter(Number.isFinite);
  if (!values.length) return;
  const {x, y} = frame(svg, rows.map(r => r.generation), Math.min(...values), Math.max(...values));
  for (const [key, colour] of [["mean", "#e08a1e"], ["best", "#2f6fb5"]]) {
    for (const run of finiteRuns(rows, key)) {  // a lone point is a zero-length line: its round caps show it
      const shown = run.length > 1 ? run : [run[0], run[0]];
      const points = shown.map(r => `${x(r.generation).toFixed(1)},${y(r[key]).toFixed(1)}`).join(" ");
      node("polyline", {points, fill: "none", stroke: colour, "stroke-width": 2, "stroke-linecap": "round"}, svg);
    }
  }
}

// A stack plot: each species a band whose height is its size, bands in order of the species' ids.
function drawSpecies(rows) {
  const svg = document.getElementById("species");
  rows = rows.filter(r => Object.keys(r.species).length);
  if (!rows.length) return;
  const ids = [...new Set(rows.flatMap(r => Object.keys(r.species)))].sort((a, b) => a - b);
  const totals = rows.map(r => Object.values(r.species).reduce((a, b) => a + b, 0));
  const {x, y} = frame(svg, rows.map(r => r.generation), 0, Math.max(...totals));
  const base = rows.map(() => 0);
  ids.forEach((id, k) => {
    const top = rows.map((r, i) => base[i] + (r.species[id] || 0));
    const upper = rows.map((r, i) => `${x(r.generation).toFixed(1)},${y(top[i]).toFixed(1)}`);
    const lower = rows.map((r, i) => `${x(r.generation).toFixed(1)},${y(base[i]).toFixed(1)}`).reverse();
    const band = node("polygon", {points: upper.concat(lower).join(" "), fill: PALETTE[k % PALETTE.length],
                                  stroke: "none", "fill-opacity": 0.85}, svg);
    node("title", {}, band).textContent = "species " + id;
    top.forEach((v, i) => { base[i] = v; });
  });
}

function drawWorkers(workers) {
  const body = document.querySelector("#workers tbody");
  body.replaceChildren();
  for (const w of workers || []) {
    const row = document.createElement("tr");
    row.dataset.worker = w.id;
    if (w.late) row.className = "late";  // a batch of it passed task_timeout
    for (const cell of [w.id, fmt(w.rate), w.capacity, w.batches_out, w.reported, w.resent, seconds(w.lateness)]) {
      const td = document.createElement("td");
      td.textContent = cell;
      row.appendChild(td);
    }
    body.appendChild(row);
  }
}

function drawChampion(champion) {
  if (!champion || champion.genome === championShown) return;
  championShown = champion.genome;
  document.getElementById("champion").src = "api/champion.svg?genome=" + champion.genome;
  text("champion-label", `genome ${champion.genome}, fitness ${fmt(champion.fitness)}`);
}

function show(state) {
  const s = state.status || {};
  text("source", {master: "live, from the master", checkpoint: "from a checkpoint",
                  status: "live, from the master's status port (no history)"}[state.source] || "");
  text("error", state.error || "");
  text("generation", s.generation ?? "-");
  text("state", s.evaluating === undefined ? "-" : (s.evaluating ? "evaluating" : "idle"));
  text("workers-count", s.workers === undefined ? "-" : `${s.workers} (${s.busy})`);
  text("rate", fmt(s.genomes_per_s));
  text("uptime", Number.isFinite(s.uptime) ? Math.round(s.uptime) + " s" : "-");
  history = history.concat(state.history).slice(-SHOWN);
  if (history.length) text("best", fmt(history[history.length - 1].best));
  drawFitness(history);
  drawSpecies(history);
  drawWorkers(state.workers);
  drawChampion(state.champion);
}

async function poll() {
  const since = history.length ? history[history.length - 1].generation + 1 : 0;
  try {
    const answer = await fetch("api/state?since=" + since, {cache: "no-store"});
    if (!answer.ok) throw new Error(`the server answered ${answer.status}`);
    show(await answer.json());
  } catch (err) {
    text("error", "cannot reach the dashboard: " + err.message);
  }
  setTimeout(poll, 1000);
}
poll();
