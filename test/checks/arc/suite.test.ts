// The open ARC test suite (test/data/arc), played through the real resolver against the fixture
// DNS server, one scenario's TXT records at a time. Its notice:
//
//   Copyright <2017> ValiMail Inc.
//
//   Permission is hereby granted, free of charge, to any person obtaining a copy of this software
//   and associated documentation files (the "Software"), to deal in the Software without
//   restriction, including without limitation the rights to use, copy, modify, merge, publish,
//   distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
//   Software is furnished to do so, subject to the following conditions:
//
//   The above copyright notice and this permission notice shall be included in all copies or
//   substantial portions of the Software.
//
//   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
//   BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
//   NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
//   DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
//   OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
//
// The suite was written against a draft of RFC 8617. Where it and the RFCs (RFC 8617, and
// RFC 6376 that the AMS follows) read differently, mailgate meets the suite:
//
// - ams_fields_c_na: an AMS without c= is signed relaxed/relaxed, where RFC 6376 section 3.5 makes
//   no c= mean simple/simple. Such an AMS is checked both ways, simple/simple first.
// - ams_fields_h_empty: an AMS with an empty h= passes, though RFC 6376 section 3.5 wants From in
//   every h=; RFC 8617 sets no such rule of its own, and mailgate does not add it.
//
// Where the suite leaves something open, the RFC decides:
//
// - cv_fail_i1_as_cv_fail, cv_fail_i2_as2_fail, cv_fail_i2_as1_fail give an empty expected cv.
//   RFC 8617 section 5.2 (steps 2 and 3) makes a seal saying cv=fail a failed chain; the empty
//   value is read as `fail`, the only result the RFC allows there.
// - ams_fields_h_includes_ams (its comment calls it unclear): an AMS may sign an older AMS;
//   RFC 8617 section 4.1.2 forbids only ARC-Seal in h=.
//
// Where they agree, for the record: a seal saying cv=fail signs its own set alone
// (i1_base_fail, i2_base_fail; RFC 8617 section 5.1.2), and no set is added over a chain whose
// newest seal says cv=fail (no_additional_sig).
//
// Facts of the files rather than of the protocol: the expected AS b= values are made over an AMS
// whose b= is unbroken, and mailgate writes each b= whole on a line of its own, so its seals are
// those same bytes. The validation file gives four test names twice (as_fields_b_head_case,
// as_fields_b_head_unfold, as_fields_b_eol_wsp, as_fields_b_inl_wsp); YAML readers keep the later
// entry, which makes the 171 tests, and the four earlier entries are played as well, under their
// own description. The signing file writes its key record as a literal block; its line breaks
// are read as the folding whitespace they stand for. Some messages fail before the rule their
// name tests (as_fields_t_empty: an AAR indented into the AMS; as_format_tags_wsp and
// as_fields_t_invalid: an AMS that does not verify; as_fields_h_present: an unpublished key):
// fields.test.ts checks those rules on their own.
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ArcSealing,
  type ChainValidation,
  gatherAuthResults,
  verifyArc,
} from '../../../src/checks/arc/index.js';
import { parseTagList } from '../../../src/checks/dkim/tags.js';
import { fieldValue, type HeaderField, parseMessage } from '../../../src/checks/message/index.js';
import { createResolver } from '../../../src/dns/index.js';
import { type FixtureDnsServer, startDnsServer } from '../../support/dns-server.js';
import { loadSigningSuite, loadValidationSuite, type Scenario } from './suite-data.js';

const dataPath = (name: string) =>
  fileURLToPath(new URL(`../../data/arc/${name}`, import.meta.url));
const validation = loadValidationSuite(dataPath('arc-draft-validation-tests.yml'));
const signing = loadSigningSuite(dataPath('arc-draft-sign-tests.yml'));

let server: FixtureDnsServer;
before(async () => {
  server = await startDnsServer();
});
after(async () => {
  await server.close();
});

/** A resolver for one scenario's records: no cache, so each test sees exactly its zone. */
function resolverFor(scenario: Scenario<unknown>) {
  server.setZone(scenario.zone);
  return createResolver({ servers: [server.address], timeout: 200, attempts: 1, cache: false });
}

function expectedCv(cv: string): ChainValidation {
  const word = cv.toLowerCase();
  // An empty expectation: see the header comment.
  if (word === '') return 'fail';
  assert.ok(word === 'none' || word === 'pass' || word === 'fail', `unknown expected cv ${cv}`);
  return word;
}

const played = { validation: 0, shadowed: 0, signing: 0 };

describe('validation suite', () => {
  for (const scenario of validation) {
    describe(scenario.description, () => {
      const cases = [
        ...Object.entries(scenario.tests).map(([name, t]) => ({ name, t, shadowed: false })),
        ...scenario.shadowed.map(({ name, test: t }) => ({
          name: `${name} (earlier entry: ${t.description})`,
          t,
          shadowed: true,
        })),
      ];
      for (const { name, t, shadowed } of cases) {
        test(name, async () => {
          const resolver = resolverFor(scenario);
          const r = await verifyArc(Buffer.from(t.message), {}, { resolver });
          assert.equal(r.cv, expectedCv(t.cv), `${name}: ${r.reason}`);
          assert.equal(r.temporary, undefined, `${name}: no DNS trouble in the suite`);
          if (shadowed) played.shadowed++;
          else played.validation++;
        });
      }
    });
  }
});

/** A tag list as a map, base64 values compared without their folding. */
function tags(text: string): Map<string, string> {
  const parsed = parseTagList(text.replace(/\r?\n/g, '\r\n '));
  assert.ok(parsed.ok, `expected tags do not parse: ${parsed.ok ? '' : parsed.reason}`);
  const out = new Map<string, string>();
  for (const [name, value] of parsed.tags) {
    out.set(name, name === 'b' || name === 'bh' ? value.replace(/\s+/g, '') : value);
  }
  return out;
}

function words(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

describe('signing suite', () => {
  for (const scenario of signing) {
    describe(scenario.description, () => {
      for (const [name, t] of Object.entries(scenario.tests)) {
        test(name, async () => {
          const resolver = resolverFor(scenario);
          const message = Buffer.from(t.message);
          // A sealer validates the incoming chain first: that result is the new seal's cv.
          const incoming = await verifyArc(message, {}, { resolver });
          const { headers, body } = parseMessage(message);
          const authResults = gatherAuthResults(headers, t.srvId);
          assert.ok(authResults, `${name}: no Authentication-Results of ${t.srvId}`);
          const sealing = new ArcSealing(
            headers,
            {
              domain: scenario.domain!,
              selector: scenario.selector!,
              privateKey: createPrivateKey(scenario.privateKey!),
              algorithm: 'rsa-sha256',
            },
            {
              authservId: t.srvId,
              authResults,
              cv: incoming.cv,
              timestamp: t.t,
              headers: t.sigHeaders.split(':'),
            },
          );
          sealing.update(body);
          const fields = sealing.finish();
          if (t.as === '') {
            assert.deepEqual(fields, [], `${name}: no set may be added`);
            assert.ok(sealing.skipped, `${name}: says why nothing was sealed`);
            assert.equal(t.ams, '');
            assert.equal(t.aar, '');
          } else {
            const [seal, signature, results] = fields as [HeaderField, HeaderField, HeaderField];
            assert.deepEqual(
              [seal.name, signature.name, results.name],
              ['ARC-Seal', 'ARC-Message-Signature', 'ARC-Authentication-Results'],
            );
            assert.deepEqual(tags(fieldValue(signature)), tags(t.ams), `${name}: AMS`);
            assert.deepEqual(tags(fieldValue(seal)), tags(t.as), `${name}: AS`);
            assert.equal(words(fieldValue(results)), words(t.aar), `${name}: AAR`);
            // What we sealed validates, through the same resolver.
            const sealed = Buffer.concat([
              ...fields.map((f) => Buffer.concat([f.raw, Buffer.from('\r\n')])),
              message,
            ]);
            const again = await verifyArc(sealed, {}, { resolver });
            const cv = tags(t.as).get('cv');
            assert.equal(again.cv, cv === 'fail' ? 'fail' : 'pass', `${name}: ${again.reason}`);
          }
          played.signing++;
        });
      }
    });
  }
});

test('every test of both suites was played', () => {
  assert.equal(played.validation, 171);
  assert.equal(played.shadowed, 4);
  assert.equal(played.signing, 17);
});
