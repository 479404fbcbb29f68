/**
 * The status page as HTML: one server-rendered document with its style inline and no script, so
 * that it works under a Content-Security-Policy that forbids every script and every fetch. Most
 * of what it shows was chosen by SMTP clients (HELO names, addresses, tags), so every value
 * passes through `text()` or `attr()`, and nothing is placed in the document any other way.
 */
import { type ChartSeries, chartColour, escapeHtml, svgChart } from '../observe/index.js';
import type { StoredDecision } from '../store/types.js';
import { VERSION } from '../version.js';
import { TOKEN_PARAMETER } from './auth.js';
import { type ChartData, MAX_SEARCH_LENGTH, type Part, type StatusData } from './status-data.js';

/** The page's Content-Security-Policy: nothing from anywhere, but inline style and the page's own forms. */
export const STATUS_PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; " +
  "base-uri 'none'; frame-ancestors 'none'";

/** Characters of one value shown at most; HELO names and tags can be long on purpose. */
const MAX_SHOWN = 256;

// Bidirectional formatting characters could make a shown address read as another one; they are
// shown as their code point instead, like the control characters escapeHtml replaces.
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/** Verdicts in the order a postmaster reads them; others follow by name. */
const ACTION_ORDER = [
  'pass',
  'accept',
  'continue',
  'skip',
  'greylist',
  'tempfail',
  'reject',
  'discard',
  'quarantine',
];

/** How the page links to itself: the token is carried along only when it came in the query. */
export interface PageLinks {
  token?: string;
}

/**
 * The whole status page for what `readStatus` read.
 *
 * @example
 * const html = renderStatusPage(await readStatus(source, { search: '' }, Date.now()), {});
 */
export function renderStatusPage(data: StatusData, links: PageLinks): string {
  const info = data.info;
  const host = text(info.hostname);
  const out: string[] = [];
  out.push(
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    '<link rel="icon" href="data:,">',
    `<title>mailgate on ${host}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<header><h1>mailgate <span class="host">on ${host}</span></h1></header><main>`,
  );
  out.push(daemonSection(data));
  out.push(chartSection(data.chart));
  out.push('<div class="columns">');
  out.push(greylistSection(data));
  out.push(tempfailSection(data.tempfails));
  out.push('</div>');
  out.push(decisionSection(data, links));
  out.push(
    `</main><footer>Read at ${text(isoTime(data.now))} from ${text(data.store)}.</footer>`,
    '</body></html>\n',
  );
  return out.join('');
}

function daemonSection(data: StatusData): string {
  const info = data.info;
  const listeners =
    info.listeners.length === 0
      ? '<p class="muted">No listeners.</p>'
      : '<table id="listeners"><thead><tr><th>Door</th><th>Listens on</th></tr></thead><tbody>' +
        info.listeners
          .map((l) => `<tr><td>${text(l.door)}</td><td><code>${text(l.spec)}</code></td></tr>`)
          .join('') +
        '</tbody></table>';
  return (
    '<section id="daemon"><h2>Daemon</h2><dl class="facts">' +
    fact('Version', text(info.version ?? VERSION)) +
    fact('Host name', text(info.hostname)) +
    fact(
      'Configuration',
      info.configFile === undefined
        ? '<span class="muted">built-in defaults</span>'
        : `<code>${text(info.configFile)}</code>`,
    ) +
    fact('Started', text(isoTime(info.startedAt))) +
    fact('Uptime', `<span id="uptime">${text(uptime(data.now - info.startedAt))}</span>`) +
    fact('Store', `<code>${text(data.store)}</code>`) +
    `</dl>${listeners}</section>`
  );
}

function chartSection(chart: Part<ChartData>): string {
  if (!chart.ok) {
    return `<section id="chart"><h2>Decisions per minute</h2>${errorBox(chart.error)}</section>`;
  }
  const { from, to, hours, counts } = chart.value;
  const byAction = new Map<string, [number, number][]>();
  for (const c of counts) {
    const points = byAction.get(c.action) ?? [];
    if (points.length === 0) byAction.set(c.action, points);
    points.push([c.bucket, c.count]);
  }
  const series: ChartSeries[] = [...byAction.keys()]
    .sort(byActionOrder)
    .map((name) => ({ name, points: byAction.get(name)! }));
  const svg = svgChart(series, {
    title: `Decisions per minute by verdict, last ${hours} ${hours === 1 ? 'hour' : 'hours'} (UTC)`,
    kind: 'stacked-bars',
    x: 'time',
    xFrom: from,
    xTo: to,
    xStep: 60_000,
    width: 1200,
    height: 300,
    id: 'decisions-chart',
  });
  const totals =
    series.length === 0
      ? ''
      : '<ul class="totals">' +
        series
          .map((s, index) => {
            const total = s.points.reduce((sum, [, y]) => sum + y, 0);
            return (
              `<li data-action="${attr(s.name)}"><span class="swatch" style="background:${chartColour(index)}"></span>` +
              `${text(s.name)} <b>${total}</b></li>`
            );
          })
          .join('') +
        '</ul>';
  return `<section id="chart"><h2>Decisions per minute</h2><div class="chart-box">${svg}</div>${totals}</section>`;
}

function greylistSection(data: StatusData): string {
  const summary = data.greylist;
  let body: string;
  if (!summary.ok) {
    body = errorBox(summary.error);
  } else {
    const g = summary.value;
    const whitelisted =
      data.whitelistAt > 0
        ? `<span id="greylist-whitelisted">${g.whitelisted}</span> <span class="muted">(from ${data.whitelistAt} ${data.whitelistAt === 1 ? 'delivery' : 'deliveries'} on)</span>`
        : '<span id="greylist-whitelisted" class="muted">off</span>';
    body =
      '<dl class="facts">' +
      fact('Waiting', `<span id="greylist-waiting">${g.waiting}</span>`) +
      fact('Passed', `<span id="greylist-passed">${g.passed}</span>`) +
      fact('Auto-whitelisted clients', whitelisted) +
      '</dl>';
  }
  return `<section id="greylist"><h2>Greylisting</h2>${body}</section>`;
}

function tempfailSection(tempfails: Part<StoredDecision[]>): string {
  let body: string;
  if (!tempfails.ok) {
    body = errorBox(tempfails.error);
  } else if (tempfails.value.length === 0) {
    body = '<p class="muted">No tempfails logged.</p>';
  } else {
    body =
      '<table id="tempfails"><thead><tr><th>Time</th><th>Client</th><th>Sender</th>' +
      '<th>Recipient</th><th>Reason</th><th>Tags</th></tr></thead><tbody>' +
      tempfails.value
        .map(
          (d) =>
            `<tr data-id="${d.id}"><td class="time">${text(isoTime(d.time))}</td>` +
            `<td>${clientCell(d)}</td><td>${address(d.sender)}</td><td>${address(d.recipient)}</td>` +
            `<td>${text(d.reason)}</td><td>${tags(d.tags)}</td></tr>`,
        )
        .join('') +
      '</tbody></table>';
  }
  return `<section id="recent-tempfails"><h2>Recent tempfails</h2>${body}</section>`;
}

function decisionSection(data: StatusData, links: PageLinks): string {
  const { search, beforeId } = data.query;
  const out: string[] = ['<section id="log"><h2>Decisions</h2>'];
  out.push(
    '<form id="search" method="get" role="search">',
    `<input type="search" id="q" name="q" value="${attr(search)}" maxlength="${MAX_SEARCH_LENGTH}" ` +
      'placeholder="IP address, sender or recipient" aria-label="Search the decision log">',
    links.token === undefined
      ? ''
      : `<input type="hidden" name="${TOKEN_PARAMETER}" value="${attr(links.token)}">`,
    '<button type="submit" id="search-submit">Search</button>',
    search === '' ? '' : ` <a id="clear" href="${attr(selfLink(links, {}))}">show all</a>`,
    '</form>',
  );
  const part = data.decisions;
  if (!part.ok) {
    out.push(errorBox(part.error), '</section>');
    return out.join('');
  }
  const { rows, olderBefore } = part.value;
  const what = search === '' ? 'Newest lines' : `Lines matching “${text(search)}”`;
  out.push(
    `<p class="muted" id="log-summary">${what}${beforeId === undefined ? '' : `, older than line ${beforeId}`}: ` +
      `<span id="log-count">${rows.length}</span> shown.</p>`,
  );
  if (rows.length > 0) {
    out.push(
      '<div class="scroll"><table id="decisions"><thead><tr><th>Time</th><th>Host</th>' +
        '<th>Stage</th><th>Client</th><th>HELO</th><th>Sender</th><th>Recipient</th>' +
        '<th>Action</th><th>Reason</th><th>Tags</th></tr></thead><tbody>',
    );
    for (const d of rows) out.push(decisionRow(d));
    out.push('</tbody></table></div>');
  }
  const paging: string[] = [];
  if (beforeId !== undefined) {
    paging.push(`<a id="newest" href="${attr(selfLink(links, { q: search }))}">newest</a>`);
  }
  if (olderBefore !== undefined) {
    paging.push(
      `<a id="older" href="${attr(selfLink(links, { q: search, before: String(olderBefore) }))}">older</a>`,
    );
  }
  if (paging.length > 0) out.push(`<nav class="paging">${paging.join(' · ')}</nav>`);
  out.push('</section>');
  return out.join('');
}

function decisionRow(d: StoredDecision): string {
  const scores =
    d.scores && Object.keys(d.scores).length > 0
      ? `<div class="muted">${text(
          Object.entries(d.scores)
            .map(([k, v]) => `${k}=${v}`)
            .join(' '),
        )}</div>`
      : '';
  const delay = d.delay === undefined ? '' : `<div class="muted">after ${d.delay} s</div>`;
  return (
    `<tr class="decision" data-id="${d.id}" data-action="${attr(d.action)}">` +
    `<td class="time">${text(isoTime(d.time))}</td><td class="word">${text(d.host)}</td>` +
    `<td class="word">${d.stage === undefined ? '' : text(d.stage)}</td><td>${clientCell(d)}</td>` +
    `<td>${d.helo === undefined ? '' : text(d.helo)}</td>` +
    `<td>${address(d.sender)}</td><td>${address(d.recipient)}</td>` +
    `<td class="word"><span class="action action-${actionClass(d.action)}">${text(d.action)}</span></td>` +
    `<td>${text(d.reason)}${delay}${scores}</td><td>${tags(d.tags)}</td></tr>`
  );
}

function clientCell(d: StoredDecision): string {
  const name = d.clientName ? `<div class="muted">${text(d.clientName)}</div>` : '';
  return `<code>${text(d.client)}</code>${name}`;
}

function address(value: string): string {
  return value === '' ? '<span class="muted">&lt;&gt;</span>' : text(value);
}

function tags(list: string[] | undefined): string {
  if (!list || list.length === 0) return '';
  return list.map((t) => `<span class="tag">${text(t)}</span>`).join(' ');
}

function fact(name: string, valueHtml: string): string {
  return `<dt>${name}</dt><dd>${valueHtml}</dd>`;
}

function errorBox(message: string): string {
  return `<div class="error" role="alert"><b>The store failed:</b> ${text(message)}</div>`;
}

/** A link to this page with `params`, and the token when it came in the query. */
function selfLink(links: PageLinks, params: Record<string, string>): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== '') query.set(name, value);
  if (links.token !== undefined) query.set(TOKEN_PARAMETER, links.token);
  const rendered = query.toString();
  // `?` alone keeps the link on this page (an empty href would too, but also keep the query).
  return rendered === '' ? '?' : `?${rendered}`;
}

function byActionOrder(a: string, b: string): number {
  const ra = ACTION_ORDER.indexOf(a);
  const rb = ACTION_ORDER.indexOf(b);
  if (ra !== rb) return (ra < 0 ? ACTION_ORDER.length : ra) - (rb < 0 ? ACTION_ORDER.length : rb);
  return a < b ? -1 : a > b ? 1 : 0;
}

function actionClass(action: string): string {
  return ACTION_ORDER.includes(action) ? action : 'other';
}

/**
 * Hostile text for element content: cut to MAX_SHOWN characters, bidirectional controls shown
 * as code points, then escaped.
 */
function text(value: string): string {
  return escapeHtml(shown(value));
}

/** Hostile text for a quoted attribute value. */
function attr(value: string): string {
  return escapeHtml(value.replace(BIDI_CONTROLS, codePoint));
}

function shown(value: string): string {
  let cut = value;
  if (cut.length > MAX_SHOWN) {
    const points = Array.from(cut);
    if (points.length > MAX_SHOWN) cut = `${points.slice(0, MAX_SHOWN - 1).join('')}…`;
  }
  return cut.replace(BIDI_CONTROLS, codePoint);
}

function codePoint(c: string): string {
  return `<U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}>`;
}

/** A time as the page shows it: UTC to the second. */
function isoTime(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return '?';
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/**
 * A span of time as a person reads it: the two largest units.
 *
 * @example
 * uptime(90_061_000)  // '1d 1h'
 */
export function uptime(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '0s';
  const seconds = Math.floor(ms / 1000);
  const units: [number, string][] = [
    [Math.floor(seconds / 86_400), 'd'],
    [Math.floor(seconds / 3600) % 24, 'h'],
    [Math.floor(seconds / 60) % 60, 'm'],
    [seconds % 60, 's'],
  ];
  const first = units.findIndex(([n]) => n > 0);
  if (first < 0) return '0s';
  return units
    .slice(first, first + 2)
    .filter(([n], i) => i === 0 || n > 0)
    .map(([n, unit]) => `${n}${unit}`)
    .join(' ');
}

const STYLE = `
:root{color-scheme:light;font:14px/1.45 system-ui,sans-serif;color:#1d1d1f;background:#f6f6f4}
body{margin:0}header{background:#22313f;color:#fff;padding:.6rem 1.2rem}
h1{font-size:1.25rem;margin:0}h1 .host{font-weight:400;opacity:.8}
h2{font-size:1.05rem;margin:0 0 .6rem}
main{padding:1rem 1.2rem;display:grid;gap:1rem;max-width:1400px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.8rem 1rem;min-width:0}
.columns{display:grid;grid-template-columns:minmax(16rem,1fr) 3fr;gap:1rem}
@media (max-width:900px){.columns{grid-template-columns:1fr}}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0 0 .6rem}
dt{color:#555}dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;vertical-align:top;padding:.25rem .45rem;border-bottom:1px solid #eee;overflow-wrap:anywhere}
th{background:#f0f0ee;font-weight:600;white-space:nowrap}td.time,td.word{white-space:nowrap}
td code{white-space:nowrap}
.scroll{overflow-x:auto}.muted{color:#6b6b6b;font-size:12px}
code{font:12px ui-monospace,monospace}
.tag{display:inline-block;background:#eef1f5;border-radius:3px;padding:0 .3rem;margin:1px 0;font-size:12px}
.action{font-weight:600}.action-reject{color:#b00020}.action-tempfail,.action-greylist{color:#9a5b00}
.action-pass,.action-accept{color:#00734d}
.error{background:#fdecea;border:1px solid #e0a39b;color:#6d1b12;padding:.5rem .7rem;border-radius:4px}
.chart-box{overflow-x:auto}.chart-box svg{max-width:100%;height:auto}
.totals{list-style:none;padding:0;margin:.4rem 0 0;display:flex;flex-wrap:wrap;gap:.4rem 1.2rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.3rem;vertical-align:-1px}
form{display:flex;gap:.5rem;align-items:center;margin:0 0 .6rem;flex-wrap:wrap}
input[type=search]{flex:1;min-width:14rem;max-width:32rem;padding:.3rem .5rem;font:inherit}
button{padding:.3rem .8rem;font:inherit}
.paging{margin-top:.6rem}footer{padding:0 1.2rem 1rem;color:#6b6b6b;font-size:12px}
`;
