// The arithmetic of reputation with known numbers: decay, the score and confidence formulas,
// good standing, and the worked example of docs/reputation.md.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addDecaying,
  cbvEvent,
  DEFAULT_REPUTATION_SETTINGS,
  decay,
  REPUTATION_EVENT_NAMES,
  REPUTATION_EVENTS,
  reputationOf,
  reputationTtlMs,
  spfEvent,
  standingOf,
} from '../../src/reputation/index.js';
import type { ReputationRow } from '../../src/store/index.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 0, 15);
const S = DEFAULT_REPUTATION_SETTINGS;

/** Float results: equal to 12 significant digits. */
function near(actual: number, expected: number, what: string) {
  assert.ok(
    Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} is not ${expected}`,
  );
}

const row = (
  event: string,
  amount: number,
  updated = NOW,
  subject = 'domain:example.org',
): ReputationRow => ({
  subject,
  event,
  amount,
  updated,
});

describe('decay', () => {
  it('halves every half-life and forgets after 64', () => {
    assert.equal(decay(0, 30 * DAY), 1);
    assert.equal(decay(30 * DAY, 30 * DAY), 0.5);
    assert.equal(decay(60 * DAY, 30 * DAY), 0.25);
    near(decay(15 * DAY, 30 * DAY), Math.SQRT1_2, 'half a half-life');
    assert.equal(decay(63 * 1000, 1000), 2 ** -63);
    assert.equal(decay(64 * 1000, 1000), 0);
    assert.equal(decay(-5 * DAY, 30 * DAY), 1, 'a clock ahead never inflates a count');
  });

  it('adds decaying amounts in either order, as the store does', () => {
    const a = { amount: 2, time: 0 };
    const b = { amount: 1, time: 1000 };
    assert.deepEqual(addDecaying(a, b, 1000), { amount: 2, time: 1000 });
    assert.deepEqual(addDecaying(b, a, 1000), { amount: 2, time: 1000 });
    assert.deepEqual(addDecaying(a, { amount: 3, time: 0 }, 1000), { amount: 5, time: 0 });
  });

  it('expires a counter after ten half-lives', () => {
    assert.equal(reputationTtlMs(30 * DAY), 300 * DAY);
  });
});

describe('the formula', () => {
  it('score = (G - B) / (G + B + prior), confidence = n / (n + n0)', () => {
    const none = standingOf({ good: 0, bad: 0, observations: 0 }, S);
    assert.deepEqual(none, { score: 0, confidence: 0, goodStanding: false });
    const one = standingOf({ good: 1, bad: 0, observations: 1 }, S);
    assert.equal(one.score, 0.5, 'one pass is not certainty');
    near(one.confidence, 1 / 11, 'one observation');
    assert.equal(one.goodStanding, false);
    const bad = standingOf({ good: 0, bad: 4, observations: 2 }, S);
    assert.equal(bad.score, -0.8);
    near(bad.confidence, 2 / 12, 'two observations');
    const even = standingOf({ good: 10, bad: 10, observations: 20 }, S);
    assert.equal(even.score, 0);
    // Exactly at both thresholds: good standing (the comparisons are "at least").
    const edge = standingOf({ good: 1, bad: 0, observations: 10 }, S);
    assert.deepEqual(edge, { score: 0.5, confidence: 0.5, goodStanding: true });
    // Many observations cannot make up for a middling score, nor a high score for few.
    assert.equal(standingOf({ good: 30, bad: 15, observations: 45 }, S).goodStanding, false);
    assert.equal(standingOf({ good: 9, bad: 0, observations: 9 }, S).goodStanding, false);
    // The bounds hold for any evidence.
    for (const [good, bad] of [
      [1e9, 0],
      [0, 1e9],
      [0.001, 0],
      [3, 7],
    ] as const) {
      const { score, confidence } = standingOf({ good, bad, observations: good + bad }, S);
      assert.ok(score >= -1 && score <= 1 && confidence >= 0 && confidence < 1);
    }
    const strict = {
      ...S,
      minScore: 0.9,
      minConfidence: 0.8,
      observationsForConfidence: 5,
      prior: 2,
    };
    const s = standingOf({ good: 40, bad: 1, observations: 20 }, strict);
    near(s.score, 39 / 43, 'score with prior 2');
    assert.equal(s.confidence, 0.8);
    assert.equal(s.goodStanding, true);
  });

  it('the worked example of docs/reputation.md', () => {
    const rows = [
      row('spf:pass', 12),
      row('spf:softfail', 1),
      row('greylist:refused', 2),
      row('greylist:pass', 2),
      row('spf:none', 3),
    ];
    const today = reputationOf('domain:example.org', rows, S, NOW);
    near(today.score, 12 / 17, 'score');
    near(today.confidence, 17 / 27, 'confidence');
    assert.equal(today.observations, 17, 'spf:none is counted but is no observation');
    assert.equal(today.goodStanding, true);
    assert.deepEqual(today.counts, {
      'spf:pass': 12,
      'spf:softfail': 1,
      'greylist:refused': 2,
      'greylist:pass': 2,
      'spf:none': 3,
    });
    assert.equal(today.lastSeen, NOW);
    assert.equal(today.known, true);

    // Sixty days (two half-lives) later, with nothing new: everything weighs a quarter.
    const later = reputationOf('domain:example.org', rows, S, NOW + 60 * DAY);
    near(later.score, 0.6, 'score later');
    near(later.confidence, 4.25 / 14.25, 'confidence later');
    assert.equal(later.observations, 4.25);
    assert.equal(later.counts['spf:pass'], 3);
    assert.equal(later.goodStanding, false, 'too little recent evidence');
    assert.equal(later.lastSeen, NOW);
  });

  it('decays each row from its own update, and leaves out other subjects and unknown events', () => {
    const rows = [
      row('spf:pass', 8, NOW - 30 * DAY),
      row('spf:pass', 100, NOW, 'domain:other.example'),
      row('future:event', 50, NOW),
      row('cbv:rejected', 1, NOW - 60 * DAY),
      row('spf:temperror', 4, NOW - 1000),
    ];
    const r = reputationOf('domain:example.org', rows, S, NOW);
    assert.deepEqual(Object.keys(r.counts).sort(), ['cbv:rejected', 'spf:pass', 'spf:temperror']);
    assert.equal(r.counts['spf:pass'], 4);
    assert.equal(r.counts['cbv:rejected'], 0.25);
    // G = 4, B = 0.25 × 2 = 0.5; n = 4.25 (temperror says nothing).
    near(r.score, 3.5 / 5.5, 'score');
    assert.equal(r.observations, 4.25);
    assert.equal(r.lastSeen, NOW - 1000);
    const nobody = reputationOf('domain:nobody.example', rows, S, NOW);
    assert.deepEqual(nobody, {
      subject: 'domain:nobody.example',
      known: true,
      score: 0,
      confidence: 0,
      goodStanding: false,
      observations: 0,
      counts: {},
      lastSeen: null,
    });
  });
});

describe('events', () => {
  it('each event is good, bad or neutral, with a weight to match', () => {
    for (const name of REPUTATION_EVENT_NAMES) {
      const { evidence, weight } = REPUTATION_EVENTS[name];
      if (evidence === 'neutral') assert.equal(weight, 0, name);
      else assert.ok(weight > 0, name);
    }
    assert.equal(REPUTATION_EVENT_NAMES.length, 13);
    // A refusal followed by the retry's pass leaves a sender better off than before.
    assert.ok(
      REPUTATION_EVENTS['greylist:pass'].weight > REPUTATION_EVENTS['greylist:refused'].weight,
    );
    // A fail outweighs a pass: passes cost a spammer with a domain of its own nothing.
    assert.ok(REPUTATION_EVENTS['spf:fail'].weight > REPUTATION_EVENTS['spf:pass'].weight);
  });

  it('maps SPF result words and call-back outcomes', () => {
    assert.equal(spfEvent('Pass'), 'spf:pass');
    assert.equal(spfEvent('PermError'), 'spf:permerror');
    assert.equal(spfEvent('temperror'), 'spf:temperror');
    assert.equal(spfEvent('SoftFail'), 'spf:softfail');
    assert.equal(spfEvent('maybe'), null);
    assert.equal(spfEvent('__proto__'), null);
    assert.equal(cbvEvent('accepted'), 'cbv:accepted');
    assert.equal(cbvEvent('dsn-accepted'), 'cbv:accepted');
    assert.equal(cbvEvent('rejected'), 'cbv:rejected');
    assert.equal(cbvEvent('dsn-rejected'), 'cbv:rejected');
  });
});
