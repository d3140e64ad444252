import { MiB } from '../bodies.js';
import type { Results } from '../results.js';
import type { Summary } from '../stats.js';
import { sizeName } from '../targets.js';

/** One horizontal bar: the median, with a whisker from min to max. */
interface Bar {
  label: string;
  value: Summary;
  /** The bridge's bars are coloured, the references grey. */
  bridge: boolean;
}

interface Panel {
  title: string;
  unit: string;
  bars: Bar[];
  digits: number;
}

const WIDTH = 760;
const LABEL_WIDTH = 230;
const VALUE_WIDTH = 90;
const BAR_HEIGHT = 18;
const BAR_GAP = 6;
const PANEL_GAP = 22;
const TITLE_HEIGHT = 22;
const BRIDGE_COLOUR = '#2f6fb3';
const REFERENCE_COLOUR = '#9aa4ae';

/** An SVG a reader can look at on GitHub: one panel per scenario, bars at the median, whiskers min–max. */
export function renderChart(results: Results): string {
  const panels = panelsOf(results);
  let y = 30;
  const parts: string[] = [
    text(
      12,
      20,
      `cosmos-attachment-bridge benchmarks (${results.startedAt.slice(0, 10)}, ${results.revision}): median, whiskers min–max of ${results.runs} runs`,
      13,
      'bold',
    ),
  ];
  for (const panel of panels) {
    parts.push(text(12, y + 15, `${panel.title} (${panel.unit})`, 12, 'bold'));
    y += TITLE_HEIGHT;
    const scale = Math.max(...panel.bars.map((bar) => bar.value.max)) * 1.05 || 1;
    const plotWidth = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20;
    for (const bar of panel.bars) {
      const x0 = LABEL_WIDTH;
      const width = (bar.value.median / scale) * plotWidth;
      const colour = bar.bridge ? BRIDGE_COLOUR : REFERENCE_COLOUR;
      parts.push(text(LABEL_WIDTH - 8, y + 13, bar.label, 12, 'normal', 'end'));
      parts.push(
        `<rect x="${x0}" y="${y}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" fill="${colour}"/>`,
      );
      const xMin = x0 + (bar.value.min / scale) * plotWidth;
      const xMax = x0 + (bar.value.max / scale) * plotWidth;
      const mid = y + BAR_HEIGHT / 2;
      parts.push(
        `<path d="M${xMin.toFixed(1)} ${mid}H${xMax.toFixed(1)}M${xMin.toFixed(1)} ${mid - 4}V${mid + 4}M${xMax.toFixed(1)} ${mid - 4}V${mid + 4}" stroke="#222" stroke-width="1.2"/>`,
      );
      parts.push(text(Math.max(x0 + width, xMax) + 6, y + 13, bar.value.median.toFixed(panel.digits), 12));
      y += BAR_HEIGHT + BAR_GAP;
    }
    y += PANEL_GAP;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

function panelsOf({ throughput, memory, concurrency, small }: Results): Panel[] {
  const panels: Panel[] = [];
  if (throughput) {
    panels.push({
      title: `Throughput, one ${sizeName(throughput.fileBytes)} file`,
      unit: 'MiB/s, higher is better',
      digits: 0,
      bars: [
        { label: 'direct to the sink', value: throughput.direct.mibPerSecond, bridge: false },
        { label: 'TCP pass-through (ceiling)', value: throughput.proxy.mibPerSecond, bridge: false },
        { label: 'bridge (multipart)', value: throughput.bridge.mibPerSecond, bridge: true },
      ],
    });
  }
  if (memory) {
    const mib = (summary: Summary): Summary => ({
      median: summary.median / MiB,
      min: summary.min / MiB,
      max: summary.max / MiB,
      runs: summary.runs.map((value) => value / MiB),
    });
    panels.push({
      title: 'Peak RSS of the process',
      unit: 'MiB, lower is better',
      digits: 0,
      bars: [
        { label: 'bridge, idle', value: mib(memory.idle), bridge: true },
        ...memory.bridge.map((entry) => ({
          label: `bridge, ${sizeName(entry.bytes)} upload`,
          value: mib(entry.peakRss),
          bridge: true,
        })),
        ...memory.naive.map((entry) => ({
          label: `naive formData(), ${sizeName(entry.bytes)}`,
          value: mib(entry.peakRss),
          bridge: false,
        })),
      ],
    });
  }
  if (concurrency) {
    panels.push({
      title: `${concurrency.concurrency} concurrent uploads of ${sizeName(concurrency.bytes)}`,
      unit: 'latency ms, lower is better',
      digits: 0,
      bars: [
        { label: 'direct p50', value: concurrency.direct.p50Ms, bridge: false },
        { label: 'bridge p50', value: concurrency.bridge.p50Ms, bridge: true },
        { label: 'direct p99', value: concurrency.direct.p99Ms, bridge: false },
        { label: 'bridge p99', value: concurrency.bridge.p99Ms, bridge: true },
      ],
    });
  }
  if (small) {
    for (const level of small.levels) {
      panels.push({
        title: `Small JSON creates, ${level.concurrency === 1 ? 'one at a time' : `${level.concurrency} clients at once`}`,
        unit: 'latency ms, lower is better',
        digits: 2,
        bars: [
          { label: 'direct p50', value: level.direct.p50Ms, bridge: false },
          { label: 'bridge p50', value: level.bridge.p50Ms, bridge: true },
          { label: 'direct p99', value: level.direct.p99Ms, bridge: false },
          { label: 'bridge p99', value: level.bridge.p99Ms, bridge: true },
        ],
      });
    }
  }
  return panels;
}

function text(
  x: number,
  y: number,
  content: string,
  size: number,
  weight = 'normal',
  anchor = 'start',
): string {
  const escaped = content.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<text x="${x.toFixed(1)}" y="${y}" font-size="${size}" font-weight="${weight}" text-anchor="${anchor}">${escaped}</text>`;
}
