import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyConnection, classifyNetworks } from '../../src/policy/index.js';

const networks = classifyNetworks({
  internalNetworks: ['10.0.0.0/8', '2001:db8:1::/48', '192.0.2.7'],
  trustedRelays: ['198.51.100.0/24', '2001:db8:2::25'],
});

const verified = { verified: true, name: 'mx.example.com', dynamic: false };

test('internal networks and SMTP AUTH make a client INTERNAL, with both reasons', () => {
  assert.deepEqual(classifyConnection({ ip: '10.9.8.7' }, networks), {
    class: 'INTERNAL',
    reasons: ['internal-network'],
  });
  assert.deepEqual(
    classifyConnection({ ip: '2001:db8:1:ffff::1', authenticated: true }, networks),
    {
      class: 'INTERNAL',
      reasons: ['internal-network', 'smtp-auth'],
    },
  );
  assert.equal(classifyConnection({ ip: '::ffff:10.0.0.1' }, networks).class, 'INTERNAL');
  assert.equal(classifyConnection({ ip: '192.0.2.7' }, networks).class, 'INTERNAL');
  assert.equal(classifyConnection({ ip: '192.0.2.8' }, networks).class, 'EXTERNAL');
  assert.deepEqual(
    classifyConnection({ ip: '203.0.113.5', authenticated: true, ptr: verified }, networks),
    {
      class: 'INTERNAL',
      reasons: ['smtp-auth'],
    },
  );
});

test('trusted relays are TRUSTED unless internal', () => {
  assert.deepEqual(classifyConnection({ ip: '198.51.100.25', ptr: verified }, networks), {
    class: 'TRUSTED',
    reasons: ['trusted-relay'],
  });
  assert.equal(classifyConnection({ ip: '2001:db8:2::25' }, networks).class, 'TRUSTED');
  assert.equal(classifyConnection({ ip: '2001:db8:2::26' }, networks).class, 'EXTERNAL');
});

test('no verified PTR, or a dynamic one, is DYNAMIC; a verified static one is EXTERNAL', () => {
  assert.deepEqual(
    classifyConnection({ ip: '203.0.113.5', ptr: { verified: false, dynamic: false } }, networks),
    {
      class: 'DYNAMIC',
      reasons: ['no-verified-ptr'],
    },
  );
  assert.deepEqual(
    classifyConnection(
      {
        ip: '203.0.113.5',
        ptr: { verified: true, name: 'dsl-203-0-113-5.example.net', dynamic: true },
      },
      networks,
    ),
    { class: 'DYNAMIC', reasons: ['dynamic-ptr'] },
  );
  assert.deepEqual(classifyConnection({ ip: '203.0.113.5', ptr: verified }, networks), {
    class: 'EXTERNAL',
    reasons: ['verified-ptr'],
  });
  assert.deepEqual(classifyConnection({ ip: '203.0.113.5' }, networks), {
    class: 'EXTERNAL',
    reasons: ['ptr-not-checked'],
  });
});

test('a PTR lookup that failed does not make a client DYNAMIC', () => {
  assert.deepEqual(
    classifyConnection(
      { ip: '203.0.113.5', ptr: { verified: false, dynamic: false, tempfail: true } },
      networks,
    ),
    { class: 'EXTERNAL', reasons: ['ptr-tempfail'] },
  );
});

test('bad networks and addresses are refused', () => {
  assert.throws(() => classifyNetworks({ internalNetworks: ['10.0.0.0/33'] }), /internal_connect/);
  assert.throws(() => classifyNetworks({ trustedRelays: ['relay.example.com'] }), /trusted_relay/);
  assert.throws(() => classifyConnection({ ip: 'x' }, networks), TypeError);
});
