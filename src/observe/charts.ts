/**
 * Small SVG charts for the status page and the HTML report: stacked bars (decisions per hour by
 * verdict), plain bars (a histogram) and lines (results over time). One self-contained `<svg>`
 * element as text, styled by attributes rather than a style sheet, so that it can be placed in a
 * page, saved as a file, or mailed, and needs no script to be read.
 */
import { escapeHtml } from './html.js';

/** One named series of (x, y) points: x a time (ms) or a number, y a value (usually a count). */
export interface ChartSeries {
  name: string;
  points: ReadonlyArray<readonly [number, number]>;
}

/** What to draw and how. */
export interface ChartOptions {
  title: string;
  /**
   * `stacked-bars`: one bar per x, the series stacked in order; `bars`: the series side by side
   * within each x; `lines`: one line per series, a dot per point.
   */
  kind: 'stacked-bars' | 'bars' | 'lines';
  /** Pixels (default 640). */
  width?: number;
  /** Pixels of the plot and its labels (default 260); grows when the legend needs more room. */
  height?: number;
  /** `time`: x is ms since the epoch, labelled in UTC; `number`: a plain number. */
  x: 'time' | 'number';
  xLabel?: string;
  yLabel?: string;
  /** The x range, so empty stretches show as empty. */
  xFrom?: number;
  xTo?: number;
  /** Width of one bar in x units (time buckets). */
  xStep?: number;
  /**
   * Names of the x positions 0, 1, 2, ... (a histogram's buckets): with a numeric x, ticks are
   * these names, centred on their bars, instead of numbers.
   */
  xCategories?: readonly string[];
  /** The `<svg>` element's id (its `<title>` gets `ID-title`). */
  id?: string;
}

/**
 * The series colours, in order (Okabe and Ito's colour-blind-safe set, without its yellow,
 * which is unreadable on white, and a few more); a chart with more series starts over.
 */
export const CHART_PALETTE: readonly string[] = [
  '#0072b2',
  '#d55e00',
  '#009e73',
  '#e69f00',
  '#cc79a7',
  '#56b4e9',
  '#6b6b6b',
  '#8c564b',
  '#1f1f7a',
  '#9a8200',
];

/**
 * The colour of the series at `index`, as `svgChart` draws it, for legends and tables outside
 * the chart.
 *
 * @example
 * chartColour(0)  // '#0072b2'
 */
export function chartColour(index: number): string {
  return CHART_PALETTE[index % CHART_PALETTE.length] as string;
}

const FONT = 'font-family="system-ui, sans-serif"';
const TITLE_HEIGHT = 28;
const TICK_LABEL_HEIGHT = 20;
const AXIS_LABEL_HEIGHT = 16;
const LEGEND_ROW = 18;
/** Legend and tick names shown at most (the full name stays in the tooltip and data-series). */
const MAX_SHOWN_NAME = 32;
/** A rough width of one character at the label size, for laying out legends without a browser. */
const CHAR_WIDTH = 6.6;

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const TIME_STEPS = [
  MINUTE,
  2 * MINUTE,
  5 * MINUTE,
  10 * MINUTE,
  15 * MINUTE,
  30 * MINUTE,
  HOUR,
  2 * HOUR,
  3 * HOUR,
  6 * HOUR,
  12 * HOUR,
  DAY,
  2 * DAY,
  7 * DAY,
  14 * DAY,
  30 * DAY,
];

type Point = readonly [number, number];

interface Tick {
  at: number;
  label: string;
}

/**
 * One `<svg>` element drawing the series: a title, axes with a few tick labels (times in UTC as
 * HH:MM, or dates once the ticks are days apart; numbers rounded to the tick step), a legend,
 * one palette colour per series. Every bar and point carries `data-series` (the series name),
 * `data-count` (its y) and `data-x`, and a `<title>` tooltip, so that a page needs no script and
 * a test can count them. Bars of 0 are not drawn; points with a non-finite coordinate or outside
 * `xFrom`..`xTo` are left out; negative values count as 0 in stacked bars. A chart with no
 * points says "no data". All text (title, labels, series names, categories) is escaped.
 *
 * @example
 * svgChart(
 *   [{ name: 'reject', points: [[Date.UTC(2026, 0, 1, 10), 4], [Date.UTC(2026, 0, 1, 11), 7]] }],
 *   { title: 'Decisions per hour', kind: 'stacked-bars', x: 'time', xStep: 3_600_000 },
 * )  // '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 640 260" ...'
 */
export function svgChart(series: ChartSeries[], options: ChartOptions): string {
  const bars = options.kind !== 'lines';
  const categories = options.x === 'number' ? options.xCategories : undefined;
  const width = Math.max(160, Math.round(finiteOr(options.width, 640)));
  const inRange = (x: number): boolean =>
    (options.xFrom === undefined || x >= options.xFrom) &&
    (options.xTo === undefined || (bars ? x < options.xTo : x <= options.xTo));
  const clean = series.map((s) => ({
    name: s.name,
    points: s.points.filter(
      (p): p is Point => Number.isFinite(p[0]) && Number.isFinite(p[1]) && inRange(p[0]),
    ),
  }));
  const hasData = clean.some((s) => s.points.length > 0);

  const legend = hasData ? layoutLegend(clean, width - 28) : { rows: 0, items: [] };
  const left = 54 + (options.yLabel ? AXIS_LABEL_HEIGHT : 0);
  const right = 16;
  const bottom =
    TICK_LABEL_HEIGHT +
    (options.xLabel ? AXIS_LABEL_HEIGHT : 0) +
    (legend.rows > 0 ? legend.rows * LEGEND_ROW + 8 : 0) +
    6;
  const plotWidth = width - left - right;
  const plotHeight = Math.max(
    60,
    Math.round(finiteOr(options.height, 260)) - TITLE_HEIGHT - bottom,
  );
  const height = TITLE_HEIGHT + plotHeight + bottom;
  const top = TITLE_HEIGHT;

  const id = options.id === undefined ? '' : escapeHtml(options.id);
  const title = escapeHtml(options.title);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" ` +
      `height="${height}" role="img" class="chart" data-kind="${options.kind}"` +
      (id ? ` id="${id}" aria-labelledby="${id}-title"` : '') +
      (hasData ? '' : ' data-empty="true"') +
      '>',
  );
  out.push(`<title${id ? ` id="${id}-title"` : ''}>${title}</title>`);
  out.push(
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="600" ${FONT} fill="#222">${title}</text>`,
  );
  const frame =
    `<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" ` +
    'fill="none" stroke="#bbb" stroke-width="1"/>';

  if (!hasData) {
    out.push(frame);
    out.push(
      `<text x="${r(left + plotWidth / 2)}" y="${r(top + plotHeight / 2)}" text-anchor="middle" ` +
        `dominant-baseline="middle" font-size="13" ${FONT} fill="#777" class="no-data">no data</text>`,
    );
    out.push(axisLabels(options, left, top, plotWidth, plotHeight));
    out.push('</svg>');
    return out.join('');
  }

  // The x range: as given, or what the points span (a bar reaches one step beyond its x).
  const xs = clean.flatMap((s) => s.points.map((p) => p[0]));
  const step =
    options.xStep !== undefined && options.xStep > 0
      ? options.xStep
      : categories
        ? 1
        : bars
          ? smallestGap(xs)
          : 1;
  // A loop, not Math.min(...xs): spreading a long series would overflow the call stack.
  let xMin = Number.POSITIVE_INFINITY;
  let xMax = Number.NEGATIVE_INFINITY;
  for (const x of xs) {
    if (x < xMin) xMin = x;
    if (x > xMax) xMax = x;
  }
  let xLo = options.xFrom ?? (categories ? 0 : xMin);
  let xHi =
    options.xTo ??
    (categories ? Math.max(categories.length, xMax + step) : xMax + (bars ? step : 0));
  if (!(xHi > xLo)) {
    // One line point, or a range given empty: a span around it, so there is an axis to draw.
    const span = bars ? step : options.x === 'time' ? HOUR : 1;
    if (!bars) xLo -= span / 2;
    xHi = xLo + span;
  }
  const sx = (x: number): number => left + ((x - xLo) / (xHi - xLo)) * plotWidth;

  // The y range: from 0 (or the lowest line point) to a round number above the highest.
  let yMax = 0;
  let yMin = 0;
  if (options.kind === 'stacked-bars') {
    const totals = new Map<number, number>();
    for (const s of clean) {
      for (const [x, y] of s.points) totals.set(x, (totals.get(x) ?? 0) + Math.max(0, y));
    }
    for (const total of totals.values()) yMax = Math.max(yMax, total);
  } else {
    for (const s of clean) {
      for (const [, y] of s.points) {
        yMax = Math.max(yMax, y);
        if (!bars) yMin = Math.min(yMin, y);
      }
    }
  }
  const integral = clean.every((s) => s.points.every((p) => Number.isInteger(p[1])));
  const yTicks = numberTicks(yMin, yMax === yMin ? yMin + 1 : yMax, 5, integral);
  const yLo = yTicks.lo;
  const yHi = yTicks.hi;
  const sy = (y: number): number => top + plotHeight - ((y - yLo) / (yHi - yLo)) * plotHeight;

  // Grid and y ticks.
  out.push('<g class="y-axis">');
  for (const tick of yTicks.ticks) {
    const y = r(sy(tick.at));
    out.push(
      `<line x1="${left}" y1="${y}" x2="${left + plotWidth}" y2="${y}" stroke="#e6e6e6" stroke-width="1"/>` +
        `<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11" ${FONT} fill="#444">${escapeHtml(tick.label)}</text>`,
    );
  }
  out.push('</g>');
  out.push(frame);

  // X ticks.
  const xTicks = categories
    ? categories
        .map((name, i) => ({ at: i + step / 2, label: shortName(name) }))
        .filter((t) => t.at >= xLo && t.at <= xHi)
    : options.x === 'time'
      ? timeTicks(xLo, xHi, Math.max(2, Math.floor(plotWidth / 84)))
      : numberTicks(xLo, xHi, Math.max(2, Math.floor(plotWidth / 70)), false).ticks.filter(
          (t) => t.at >= xLo && t.at <= xHi,
        );
  out.push('<g class="x-axis">');
  for (const tick of xTicks) {
    const x = r(sx(tick.at));
    out.push(
      `<line x1="${x}" y1="${top + plotHeight}" x2="${x}" y2="${top + plotHeight + 4}" stroke="#888" stroke-width="1"/>` +
        `<text x="${x}" y="${top + plotHeight + 15}" text-anchor="middle" font-size="11" ${FONT} fill="#444">${escapeHtml(tick.label)}</text>`,
    );
  }
  out.push('</g>');

  // The data.
  const xName = (x: number): string =>
    categories
      ? (categories[Math.round(x)] ?? formatNumber(x, 1))
      : options.x === 'time'
        ? isoMinute(x)
        : String(x);
  out.push('<g class="plot">');
  if (options.kind === 'stacked-bars') {
    const stacks = new Map<number, number>();
    clean.forEach((s, index) => {
      for (const [x, y] of s.points) {
        const value = Math.max(0, y);
        if (value === 0) continue;
        const below = stacks.get(x) ?? 0;
        stacks.set(x, below + value);
        const [x0, x1] = barSpan(sx(x), sx(x + step));
        const yTop = sy(below + value);
        const yBottom = sy(below);
        out.push(bar(s.name, index, x, y, x0, yTop, x1 - x0, yBottom - yTop, xName(x)));
      }
    });
  } else if (options.kind === 'bars') {
    const groups = clean.length;
    clean.forEach((s, index) => {
      for (const [x, y] of s.points) {
        if (y <= 0) continue;
        const [x0, x1] = barSpan(sx(x), sx(x + step));
        const slot = (x1 - x0) / groups;
        const yTop = sy(y);
        out.push(bar(s.name, index, x, y, x0 + slot * index, yTop, slot, sy(0) - yTop, xName(x)));
      }
    });
  } else {
    clean.forEach((s, index) => {
      const colour = chartColour(index);
      const name = escapeHtml(s.name);
      const sorted = [...s.points].sort((a, b) => a[0] - b[0]);
      if (sorted.length > 1) {
        const path = sorted.map(([x, y]) => `${r(sx(x))},${r(sy(y))}`).join(' ');
        out.push(
          `<polyline class="line" data-series="${name}" points="${path}" fill="none" stroke="${colour}" stroke-width="2"/>`,
        );
      }
      for (const [x, y] of sorted) {
        out.push(
          `<circle class="point" data-series="${name}" data-count="${y}" data-x="${x}" ` +
            `cx="${r(sx(x))}" cy="${r(sy(y))}" r="2.5" fill="${colour}">` +
            `<title>${name}: ${y} (${escapeHtml(xName(x))})</title></circle>`,
        );
      }
    });
  }
  out.push('</g>');

  out.push(axisLabels(options, left, top, plotWidth, plotHeight));

  // The legend, under the x axis.
  const legendTop =
    top + plotHeight + TICK_LABEL_HEIGHT + (options.xLabel ? AXIS_LABEL_HEIGHT : 0) + 8;
  out.push('<g class="legend">');
  for (const item of legend.items) {
    const x = 14 + item.x;
    const y = legendTop + item.row * LEGEND_ROW;
    out.push(
      `<g data-legend="${escapeHtml(item.name)}"><rect x="${r(x)}" y="${y}" width="11" height="11" fill="${chartColour(item.index)}"/>` +
        `<text x="${r(x + 15)}" y="${y + 9.5}" font-size="11" ${FONT} fill="#333">${escapeHtml(shortName(item.name))}</text></g>`,
    );
  }
  out.push('</g>');
  out.push('</svg>');
  return out.join('');
}

/** One bar: a rect with its series, value and x as data, and a tooltip. */
function bar(
  series: string,
  index: number,
  x: number,
  y: number,
  px: number,
  py: number,
  width: number,
  height: number,
  xName: string,
): string {
  const name = escapeHtml(series);
  return (
    `<rect class="bar" data-series="${name}" data-count="${y}" data-x="${x}" ` +
    `x="${r(px)}" y="${r(py)}" width="${r(Math.max(0.5, width))}" height="${r(Math.max(0, height))}" ` +
    `fill="${chartColour(index)}"><title>${name}: ${y} (${escapeHtml(xName)})</title></rect>`
  );
}

/** A bar's pixel span with a small gap either side, when there is room for one. */
function barSpan(x0: number, x1: number): [number, number] {
  const gap = Math.min(2, (x1 - x0) * 0.12);
  return [x0 + gap, x1 - gap];
}

function axisLabels(
  options: ChartOptions,
  left: number,
  top: number,
  plotWidth: number,
  plotHeight: number,
): string {
  let out = '';
  if (options.xLabel) {
    out +=
      `<text class="x-label" x="${r(left + plotWidth / 2)}" y="${top + plotHeight + TICK_LABEL_HEIGHT + 12}" ` +
      `text-anchor="middle" font-size="11" ${FONT} fill="#333">${escapeHtml(options.xLabel)}</text>`;
  }
  if (options.yLabel) {
    const cy = r(top + plotHeight / 2);
    out +=
      `<text class="y-label" x="12" y="${cy}" transform="rotate(-90 12 ${cy})" text-anchor="middle" ` +
      `dominant-baseline="middle" font-size="11" ${FONT} fill="#333">${escapeHtml(options.yLabel)}</text>`;
  }
  return out;
}

interface LegendItem {
  name: string;
  index: number;
  row: number;
  x: number;
}

/** Legend entries placed left to right, wrapping to a new row when the width is used up. */
function layoutLegend(
  series: ReadonlyArray<{ name: string }>,
  room: number,
): { rows: number; items: LegendItem[] } {
  const items: LegendItem[] = [];
  let row = 0;
  let x = 0;
  series.forEach((s, index) => {
    const size = 15 + Array.from(shortName(s.name)).length * CHAR_WIDTH + 14;
    if (x > 0 && x + size > room) {
      row += 1;
      x = 0;
    }
    items.push({ name: s.name, index, row, x });
    x += size;
  });
  return { rows: items.length > 0 ? row + 1 : 0, items };
}

/** A name cut for display; hostile senders can make them as long as they like. */
function shortName(name: string): string {
  const points = Array.from(name);
  return points.length <= MAX_SHOWN_NAME
    ? name
    : `${points.slice(0, MAX_SHOWN_NAME - 1).join('')}…`;
}

/** The smallest distance between distinct x values: the natural width of a bar. */
function smallestGap(xs: readonly number[]): number {
  const sorted = [...new Set(xs)].sort((a, b) => a - b);
  let gap = Number.POSITIVE_INFINITY;
  for (let i = 1; i < sorted.length; i++) {
    gap = Math.min(gap, (sorted[i] as number) - (sorted[i - 1] as number));
  }
  return Number.isFinite(gap) && gap > 0 ? gap : 1;
}

/** A step of 1, 2 or 5 times a power of ten, near `raw`. */
function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

/** Round ticks covering lo..hi, about `count` of them; whole numbers only when `integral`. */
function numberTicks(
  lo: number,
  hi: number,
  count: number,
  integral: boolean,
): { lo: number; hi: number; ticks: Tick[] } {
  let step = niceStep((hi - lo) / Math.max(1, count));
  if (integral) step = Math.max(1, step);
  const first = Math.floor(lo / step) * step;
  const last = Math.ceil(hi / step) * step;
  const ticks: Tick[] = [];
  for (let i = 0; first + i * step <= last + step / 1e6 && i < 1000; i++) {
    const at = Number((first + i * step).toPrecision(12));
    ticks.push({ at, label: formatNumber(at, step) });
  }
  return { lo: first, hi: last > first ? last : first + step, ticks };
}

/** Time ticks at round UTC instants, at most `count`: HH:MM within days, dates across them. */
function timeTicks(lo: number, hi: number, count: number): Tick[] {
  const span = hi - lo;
  const step = TIME_STEPS.find((s) => span / s <= count) ?? niceStep(span / count / DAY) * DAY;
  const ticks: Tick[] = [];
  const days = step >= DAY;
  // Days count from the first midnight in range, not from the epoch's Thursday.
  const start = days ? Math.ceil(lo / DAY) * DAY : Math.ceil(lo / step) * step;
  for (let at = start; at <= hi && ticks.length < 1000; at += step) {
    const label =
      days || (span > DAY && at % DAY === 0) ? isoDate(at, span > 300 * DAY) : hourMinute(at);
    ticks.push({ at, label });
  }
  return ticks;
}

const two = (n: number): string => String(n).padStart(2, '0');

function hourMinute(ms: number): string {
  const d = new Date(ms);
  return `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
}

function isoDate(ms: number, withYear: boolean): string {
  const d = new Date(ms);
  const monthDay = `${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())}`;
  return withYear ? `${d.getUTCFullYear()}-${monthDay}` : monthDay;
}

function isoMinute(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')}Z`;
}

/** A number shown to the precision its tick step needs, with k/M/G for large ones. */
function formatNumber(value: number, step: number): string {
  const abs = Math.abs(value);
  // From 10000 on, as thousands: five digits are hard to read at a glance on an axis.
  for (const [from, size, suffix] of [
    [1e9, 1e9, 'G'],
    [1e6, 1e6, 'M'],
    [1e4, 1e3, 'k'],
  ] as const) {
    if (abs >= from) return `${trimZeros((value / size).toFixed(decimals(step / size)))}${suffix}`;
  }
  const text = value.toFixed(decimals(step));
  return text === '-0' ? '0' : text;
}

function decimals(step: number): number {
  if (!(step > 0) || step >= 1) return 0;
  return Math.min(6, Math.ceil(-Math.log10(step) - 1e-9));
}

function trimZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

function finiteOr(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) ? value : fallback;
}

/** Coordinates to two decimals, which keeps the SVG short and is finer than any screen. */
function r(n: number): number {
  return Math.round(n * 100) / 100;
}
