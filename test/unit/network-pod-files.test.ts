import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isEmptyDnsConfig, renderHosts } from '../../src/actors/sandbox/pod-files.js';
import { renderResolvConf } from '../../src/machines/pod-rules.js';
import { isCrispError } from '../../src/errors.js';

test('resolv.conf holds search, nameservers and options from the CRI DNS config', () => {
  assert.equal(
    renderResolvConf({ servers: ['10.96.0.10'], searches: ['default.svc.cluster.local', 'cluster.local'], options: ['ndots:5'] }),
    'search default.svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n',
  );
  assert.equal(renderResolvConf({ servers: ['1.1.1.1', '2606:4700::1111'] }), 'nameserver 1.1.1.1\nnameserver 2606:4700::1111\n');
  assert.equal(renderResolvConf({}), '');
});

test('bad DNS entries are rejected naming the entry', () => {
  const rejects = (dns: object, field: RegExp) =>
    assert.throws(() => renderResolvConf(dns), (e: unknown) => isCrispError(e, 'InvalidArgument') && field.test(e.message));
  rejects({ servers: ['10.0.0.1', 'dns.example'] }, /^dns_config\.servers\[1\]: "dns\.example" is not an IP address/);
  rejects({ searches: ['two words'] }, /^dns_config\.searches\[0\]/);
  rejects({ options: [''] }, /^dns_config\.options\[0\]/);
  rejects({ searches: ['a'.repeat(254)] }, /^dns_config\.searches\[0\]/);
});

test('an empty DNS config means: use the host resolv.conf', () => {
  assert.equal(isEmptyDnsConfig(undefined), true);
  assert.equal(isEmptyDnsConfig({ servers: [], searches: [], options: [] }), true);
  assert.equal(isEmptyDnsConfig({ options: ['ndots:1'] }), false);
});

test('hosts has the loopback names and each pod IP with the hostname', () => {
  assert.equal(
    renderHosts('web-0', ['10.88.0.5', 'fd00::5']),
    [
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'fe00::0\tip6-localnet',
      'fe00::0\tip6-mcastprefix',
      'fe00::1\tip6-allnodes',
      'fe00::2\tip6-allrouters',
      '10.88.0.5\tweb-0',
      'fd00::5\tweb-0',
      '',
    ].join('\n'),
  );
  assert.throws(() => renderHosts('web-0', ['10.88.0']), /podIps\[0\]/);
  assert.throws(() => renderHosts('bad host', []), /^InvalidArgument|hostname/);
});
