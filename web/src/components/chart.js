/** A time-series line chart drawn by Chart.js (only the parts a line chart needs are
 * registered, to keep the bundle small). `series` is [{label, points: [[unix s, value]]}]. */
import { html } from "htm/preact";
import { useEffect, useRef } from "preact/hooks";
import { CategoryScale, Chart, Filler, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip } from "chart.js";
import { bytes } from "../format.js";

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Filler, Legend, Tooltip);

const COLORS = ["#2563eb", "#16a34a", "#d97706"];

function tickLabel(seconds, span) {
  const when = new Date(seconds * 1000);
  const options = span > 2 * 86400 ? { day: "numeric", month: "short" } : { hour: "2-digit", minute: "2-digit" };
  return new Intl.DateTimeFormat("en-GB", options).format(when);
}

export function TimeChart({ title, series, range, format = bytes, emptyText = "" }) {
  const canvas = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    const all = series.flatMap((line) => line.points.map((point) => point[0]));
    const [start, end] = range || (all.length ? [Math.min(...all), Math.max(...all)] : [0, 0]);
    const span = end - start;
    const top = Math.max(0, ...series.flatMap((line) => line.points.map((point) => point[1])));
    const data = {
      datasets: series.map((line, index) => ({
        label: line.label,
        data: line.points.map(([x, y]) => ({ x, y })),
        borderColor: COLORS[index % COLORS.length],
        backgroundColor: `${COLORS[index % COLORS.length]}22`,
        fill: series.length === 1,
        pointRadius: 0,
        borderWidth: 2,
        tension: 0.25,
      })),
    };
    const options = {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { type: "linear", min: start, max: end, ticks: { callback: (value) => tickLabel(value, span), maxTicksLimit: 8 }, grid: { display: false } },
        // an empty storage still gets a readable scale (0 … 1 KB) instead of "1 B" repeated
        y: { beginAtZero: true, suggestedMax: top > 0 ? undefined : 1000, ticks: { callback: (value) => format(value), maxTicksLimit: 6 } },
      },
      plugins: {
        legend: { display: series.length > 1, position: "bottom" },
        tooltip: { callbacks: { title: (items) => items.length && tickLabel(items[0].parsed.x, 0), label: (item) => `${item.dataset.label}: ${format(item.parsed.y)}` } },
      },
    };
    if (chart.current) {
      chart.current.data = data;
      chart.current.options = options;
      chart.current.update();
    } else {
      chart.current = new Chart(canvas.current, { type: "line", data, options });
    }
  }, [series]);
  useEffect(() => () => chart.current?.destroy(), []);
  const empty = !series.some((line) => line.points.some((point) => point[1] > 0));
  const latest = series.map((line) => `${line.label}: ${format(line.points.at(-1)?.[1] ?? 0)}`).join(", ");
  return html`<figure class="chart">
    <figcaption>${title}</figcaption>
    <div class="chart-box"><canvas ref=${canvas} role="img" aria-label=${`${title}. ${latest}`}></canvas>
      ${empty && emptyText && html`<p class="chart-empty">${emptyText}</p>`}</div>
  </figure>`;
}
