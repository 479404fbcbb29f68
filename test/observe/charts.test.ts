// The SVG charts and the HTML escaping under them: hostile names stay text, every bar and point
// is there with its count, stacks add up to their totals, and an empty chart says so.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ChartSeries, chartColour, escapeHtml, svgChart } from '../../src/observe/index.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 11, 7, 0, 0, 0);

interface Mark {
  tag: string;
  attrs: Record<string, string>;
}

/** The opening tags of an SVG text with their attributes, as a parser would read them. */
function marks(svg: string, tag: string): Mark[] {
  const found: Mark[] = [];
  for (const m of svg.matchAll(new RegExp(`<${tag}\\s([^>]*?)/?>`, 'g'))) {
    const attrs: Record<string, string> = {};
    for (const a of m[1]!.matchAll(/([\w:-]+)="([^"]*)"/g)) attrs[a[1]!] = a[2]!;
    found.push({ tag, attrs });
  }
  return found;
}

/** Entity references undone: what a browser shows for an escaped text. */
function unescapeHtml(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}

describe('escapeHtml', () => {
  it('escapes the five characters that end text or attributes', () => {
    assert.equal(
      escapeHtml(`<a href="x" title='y'>&amp;</a>`),
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;',
    );
  });

  it('replaces control characters but keeps tab and line feed', () => {
    assert.equal(
      escapeHtml('a\u0000b\rc\u001bd\te\nf\u007fg\u0085h'),
      'a\uFFFDb\uFFFDc\uFFFDd\te\nf\uFFFDg\uFFFDh',
    );
  });

  it('replaces lone surrogates and noncharacters, keeps real pairs', () => {
    assert.equal(escapeHtml('x\uD800y\uDC00z\uFFFE'), 'x\uFFFDy\uFFFDz\uFFFD');
    assert.equal(escapeHtml('mail \u{1F4EC} ok'), 'mail \u{1F4EC} ok');
  });

  it('returns plain text as it is', () => {
    assert.equal(escapeHtml('mx1.example.org [192.0.2.1]'), 'mx1.example.org [192.0.2.1]');
  });
});

describe('svgChart', () => {
  const HOSTILE = `"><script>alert('x')</script><svg onload="y">\r\n\u0000`;

  it('keeps hostile series names, titles and labels as text', () => {
    const svg = svgChart(
      [
        { name: HOSTILE, points: [[T0, 3]] },
        { name: 'pass', points: [[T0, 1]] },
      ],
      {
        title: `<b>${HOSTILE}</b>`,
        kind: 'stacked-bars',
        x: 'time',
        xStep: HOUR,
        xLabel: HOSTILE,
        yLabel: '<i>y</i>',
        id: 'a"b',
      },
    );
    assert.doesNotMatch(svg, /<script/i);
    assert.doesNotMatch(svg, /<b>|<i>|onload="/);
    assert.doesNotMatch(svg, /[\u0000\r]/);
    // The one svg element and nothing that escaped it.
    assert.equal((svg.match(/<svg[\s>]/g) ?? []).length, 1);
    assert.ok(svg.startsWith('<svg ') && svg.endsWith('</svg>'));
    const hostileBars = marks(svg, 'rect').filter(
      (m) => m.attrs['class'] === 'bar' && m.attrs['data-series'] !== 'pass',
    );
    assert.equal(hostileBars.length, 1);
    assert.equal(
      unescapeHtml(hostileBars[0]!.attrs['data-series']!),
      HOSTILE.replace(/[\r\u0000]/g, '\uFFFD'),
    );
    assert.match(svg, /id="a&quot;b"/);
    assert.match(svg, /&lt;b&gt;&quot;&gt;&lt;script&gt;/);
  });

  it('draws one bar per non-zero point, with its series and count', () => {
    const series: ChartSeries[] = [
      {
        name: 'pass',
        points: [
          [T0, 5],
          [T0 + HOUR, 0],
          [T0 + 2 * HOUR, 2],
        ],
      },
      { name: 'reject', points: [[T0 + HOUR, 4]] },
      { name: 'greylist', points: [] },
    ];
    const svg = svgChart(series, {
      title: 'Decisions per hour',
      kind: 'stacked-bars',
      x: 'time',
      xStep: HOUR,
      xFrom: T0,
      xTo: T0 + 24 * HOUR,
    });
    const bars = marks(svg, 'rect').filter((m) => m.attrs['class'] === 'bar');
    assert.equal(bars.length, 3);
    assert.deepEqual(
      bars.map((b) => [b.attrs['data-series'], Number(b.attrs['data-count'])]),
      [
        ['pass', 5],
        ['pass', 2],
        ['reject', 4],
      ],
    );
    // One colour per series, the palette's in order.
    assert.equal(bars[0]!.attrs['fill'], chartColour(0));
    assert.equal(bars[2]!.attrs['fill'], chartColour(1));
    // The legend names every series.
    assert.deepEqual(
      marks(svg, 'g')
        .map((g) => g.attrs['data-legend'])
        .filter((n) => n !== undefined),
      ['pass', 'reject', 'greylist'],
    );
    assert.match(svg, /role="img"/);
    assert.match(svg, /<title>Decisions per hour<\/title>/);
    assert.match(svg, /viewBox="0 0 \d+ \d+"/);
  });

  it('stacks bars so that heights add up to each total, on one baseline', () => {
    const values = [
      [7, 3, 11],
      [2, 0, 9],
      [1, 6, 4],
    ];
    const series: ChartSeries[] = ['pass', 'reject', 'tempfail'].map((name, s) => ({
      name,
      points: values.map((row, i) => [T0 + i * HOUR, row[s]!] as const),
    }));
    const svg = svgChart(series, {
      title: 'stack',
      kind: 'stacked-bars',
      x: 'time',
      xStep: HOUR,
      xFrom: T0,
      xTo: T0 + 3 * HOUR,
    });
    const bars = marks(svg, 'rect').filter((m) => m.attrs['class'] === 'bar');
    const byX = new Map<string, Mark[]>();
    for (const b of bars) byX.set(b.attrs['data-x']!, [...(byX.get(b.attrs['data-x']!) ?? []), b]);
    assert.equal(byX.size, 3);
    const totals = values.map((row) => row.reduce((a, b) => a + b, 0));
    const bottoms = new Set<number>();
    const pixelsPerUnit: number[] = [];
    for (const [x, stack] of byX) {
      const i = (Number(x) - T0) / HOUR;
      const heights = stack.map((b) => Number(b.attrs['height']));
      const sum = heights.reduce((a, b) => a + b, 0);
      pixelsPerUnit.push(sum / totals[i]!);
      // Each segment is its own share of the stack.
      for (const b of stack) {
        assert.ok(
          Math.abs(Number(b.attrs['height']) / Number(b.attrs['data-count']) - sum / totals[i]!) <
            0.05,
        );
      }
      // Segments touch: each starts where the one below ends.
      const sorted = [...stack].sort((a, b) => Number(b.attrs['y']) - Number(a.attrs['y']));
      for (let k = 1; k < sorted.length; k++) {
        const below = sorted[k - 1]!;
        assert.ok(
          Math.abs(
            Number(sorted[k]!.attrs['y']) +
              Number(sorted[k]!.attrs['height']) -
              Number(below.attrs['y']),
          ) < 0.02,
        );
      }
      bottoms.add(Math.round(Number(sorted[0]!.attrs['y']) + Number(sorted[0]!.attrs['height'])));
    }
    assert.equal(bottoms.size, 1);
    // One scale for every stack: the tallest total is the tallest bar.
    for (const p of pixelsPerUnit) assert.ok(Math.abs(p - pixelsPerUnit[0]!) < 0.05);
  });

  it('draws grouped bars side by side from the baseline', () => {
    const svg = svgChart(
      [
        { name: 'a', points: [[0, 2]] },
        { name: 'b', points: [[0, 4]] },
      ],
      { title: 'grouped', kind: 'bars', x: 'number', xCategories: ['<1m', '1–5m'] },
    );
    const [a, b] = marks(svg, 'rect').filter((m) => m.attrs['class'] === 'bar');
    assert.ok(a && b);
    assert.ok(Number(b.attrs['x']) > Number(a.attrs['x']));
    const baseA = Number(a.attrs['y']) + Number(a.attrs['height']);
    const baseB = Number(b.attrs['y']) + Number(b.attrs['height']);
    assert.ok(Math.abs(baseA - baseB) < 0.02);
    assert.ok(Math.abs(Number(b.attrs['height']) - 2 * Number(a.attrs['height'])) < 0.05);
    // The category names are the x ticks.
    assert.match(svg, />&lt;1m</);
    assert.match(svg, />1–5m</);
  });

  it('draws lines with a point per value', () => {
    const svg = svgChart(
      [
        {
          name: 'pass',
          points: [
            [T0, 3],
            [T0 + HOUR, 5],
          ],
        },
        { name: 'fail', points: [[T0, 1]] },
      ],
      { title: 'SPF', kind: 'lines', x: 'time', xFrom: T0, xTo: T0 + 6 * HOUR },
    );
    const points = marks(svg, 'circle');
    assert.equal(points.length, 3);
    assert.deepEqual(
      points.map((p) => `${p.attrs['data-series']}=${p.attrs['data-count']}`),
      ['pass=3', 'pass=5', 'fail=1'],
    );
    assert.equal(marks(svg, 'polyline').length, 1);
  });

  it('labels time ticks in UTC as HH:MM within a day and as dates across days', () => {
    const day = svgChart([{ name: 'n', points: [[T0 + HOUR, 1]] }], {
      title: 'd',
      kind: 'bars',
      x: 'time',
      xStep: HOUR,
      xFrom: T0,
      xTo: T0 + 24 * HOUR,
    });
    assert.match(day, />06:00</);
    assert.match(day, />12:00</);
    const week = svgChart([{ name: 'n', points: [[T0, 1]] }], {
      title: 'w',
      kind: 'bars',
      x: 'time',
      xStep: 86_400_000,
      xFrom: T0,
      xTo: T0 + 14 * 86_400_000,
    });
    assert.match(week, />12-07</);
    assert.doesNotMatch(week, />\d\d:\d\d</);
  });

  it('rounds numeric ticks', () => {
    const svg = svgChart([{ name: 'n', points: [[1, 0.37]] }], {
      title: 'n',
      kind: 'lines',
      x: 'number',
      xFrom: 0,
      xTo: 2,
    });
    const labels = [
      ...svg.matchAll(/<text x="[\d.]+" y="[\d.]+" text-anchor="end"[^>]*>([^<]*)</g),
    ].map((m) => m[1]);
    assert.deepEqual(labels, ['0.0', '0.1', '0.2', '0.3', '0.4']);
    const big = svgChart([{ name: 'n', points: [[1, 48_000]] }], {
      title: 'n',
      kind: 'bars',
      x: 'number',
    });
    assert.match(big, />50k</);
  });

  it('says "no data" when there are no points', () => {
    for (const series of [[], [{ name: 'pass', points: [] }]]) {
      const svg = svgChart(series, { title: 'Nothing', kind: 'stacked-bars', x: 'time' });
      assert.match(svg, /no data/);
      assert.match(svg, /data-empty="true"/);
      assert.equal(marks(svg, 'rect').filter((m) => m.attrs['class'] === 'bar').length, 0);
      assert.match(svg, /<title>Nothing<\/title>/);
    }
  });

  it('leaves out points outside the range and non-finite ones', () => {
    const svg = svgChart(
      [
        {
          name: 'n',
          points: [
            [T0 - HOUR, 9],
            [T0, 1],
            [T0 + HOUR, Number.NaN],
            [T0 + 3 * HOUR, 2],
          ],
        },
      ],
      { title: 'r', kind: 'bars', x: 'time', xStep: HOUR, xFrom: T0, xTo: T0 + 3 * HOUR },
    );
    const bars = marks(svg, 'rect').filter((m) => m.attrs['class'] === 'bar');
    assert.deepEqual(
      bars.map((b) => Number(b.attrs['data-count'])),
      [1],
    );
  });
});
