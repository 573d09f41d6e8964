// Caller mistakes over the real socket (issue 15, sections 5 and 6): each gets INVALID_ARGUMENT
// (or NOT_FOUND) naming the field, a short quotation of the bad value, and leaves nothing made:
// no pod, no container, no directory, no cgroup. The connection keeps serving afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startTestNode, type TestNode } from '../helpers/node-env.js';
import { call } from '../helpers/cri-client.js';
import { eventually } from '../helpers/eventually.js';
import { PREFACE, SETTINGS, bombFrames, frame, requestBlock, sendRaw, versionAnswers } from '../helpers/h2-frames.js';
import type { PodSandboxConfig } from '../../src/cri/proto/gen/runtime/v1/PodSandboxConfig.js';
import type { ContainerConfig } from '../../src/cri/proto/gen/runtime/v1/ContainerConfig.js';
import { blob, buildImage, buildLayer, fixtures, pushImage, type BuiltImage } from '../helpers/oci-images.js';

let node: TestNode;
let podId: string;
const rt = () => node.daemon.clients.runtime;
const img = () => node.daemon.clients.image;

let oddImage: string;

before(async () => {
  node = await startTestNode([], {
    async prepare(registry) {
      // Legal but unusual layer entries, as some image builders write them: absolute names, an
      // inner '..' that stays inside the root, an absolute hard-link target.
      const busybox = fixtures().busybox.image as BuiltImage;
      const odd = buildLayer([
        { path: '/odd', type: 'dir', mode: 0o755 },
        { path: '/odd/abs.txt', type: 'file', content: 'absolute\n', mode: 0o644 },
        { path: 'odd/x/../inner.txt', type: 'file', content: 'inner\n', mode: 0o644 },
        { path: 'odd/hard.txt', type: 'hardlink', linkname: '/odd/abs.txt' },
      ]);
      oddImage = `${registry.host}/crisp-test/odd-layers:latest`;
      await pushImage(registry.url, 'crisp-test/odd-layers', 'latest', buildImage({ layers: [busybox.layers[0]!, odd] }));
      // 501 layers (one tiny blob, listed 501 times): more than overlayfs can stack.
      const tiny = buildLayer([{ path: 'tiny', type: 'file', content: 'x' }]);
      await pushImage(registry.url, 'crisp-test/too-many-layers', 'latest', buildImage({ layers: Array(501).fill(tiny) }));
      // 96 MiB of zeros in zstd: a few KiB on the wire.
      await pushImage(registry.url, 'crisp-test/zstd-bomb', 'latest', buildImage({ layers: [buildLayer([{ path: 'zeros', type: 'file', content: Buffer.alloc(96 << 20) }], 'zstd')] }));
      // Manifests that lie about the sizes of their config and of a layer.
      const honest = buildImage({ layers: [buildLayer([{ path: 'honest', type: 'file', content: 'y'.repeat(4096) }])] });
      const truth = JSON.parse(honest.manifest.data.toString()) as { config: { size: number }; layers: { size: number }[] };
      const lies = {
        'lying-config': { ...truth, config: { ...truth.config, size: truth.config.size - 1 } },
        'lying-layer': { ...truth, layers: [{ ...truth.layers[0]!, size: truth.layers[0]!.size + 100 }] },
      };
      for (const [repo, lie] of Object.entries(lies)) {
        await pushImage(registry.url, `crisp-test/${repo}`, 'latest', { ...honest, manifest: blob(Buffer.from(JSON.stringify(lie)), honest.manifest.mediaType) });
      }
    },
  });
  podId = await node.runPod(`hostile${node.tag}`);
});
after(async () => {
  await node?.cleanup();
});

async function refused(what: Promise<unknown>, code: grpc.status, pattern: RegExp): Promise<void> {
  await assert.rejects(what, (err: grpc.ServiceError) => {
    assert.equal(err.code, code, `${grpc.status[err.code]}: ${err.details}`);
    assert.match(err.details, pattern);
    assert.ok(err.details.length < 600, `the reply quotes ${err.details.length} characters`);
    return true;
  });
}

let n = 0;
function pod(extra: (c: PodSandboxConfig) => PodSandboxConfig): PodSandboxConfig {
  const base = node.podConfig(`bad${n++}`);
  return extra(base);
}

test('bad RunPodSandbox requests are INVALID_ARGUMENT naming the field, and make nothing', async () => {
  const relative = `crisp-hostile-${node.tag}`;
  const cases: [string, PodSandboxConfig, RegExp][] = [
    ['pod named ..', pod((c) => ({ ...c, metadata: { ...c.metadata!, name: '..' } })), /config\.metadata\.name: "\.\." must be/],
    ['1 MiB pod name', pod((c) => ({ ...c, metadata: { ...c.metadata!, name: 'a'.repeat(1 << 20) } })), /config\.metadata\.name: "a+… \(\d+ more characters\)"/],
    ['uid with a slash', pod((c) => ({ ...c, metadata: { ...c.metadata!, uid: 'x/../y' } })), /config\.metadata\.uid/],
    ['1 MiB hostname', pod((c) => ({ ...c, hostname: 'h'.repeat(1 << 20) })), /config\.hostname/],
    ['relative log_directory', pod((c) => ({ ...c, log_directory: `../../${relative}` })), /config\.log_directory: .* must be an absolute path/],
    ['log_directory with ..', pod((c) => ({ ...c, log_directory: `${node.logDir}/../../${relative}` })), /config\.log_directory: .* must not contain/],
    ['cgroup_parent with ..', pod((c) => ({ ...c, linux: { ...c.linux, cgroup_parent: `${node.cgroupParent}/../../${relative}` } })), /config\.linux\.cgroup_parent: .* must not contain/],
    ['a 1 MiB label key', pod((c) => ({ ...c, labels: { ['k'.repeat(1 << 20)]: 'v' } })), /config\.labels: key "k+… \(\d+ more characters\)" is longer than 317/],
    ['annotations over 256 KiB', pod((c) => ({ ...c, annotations: { a: 'x'.repeat(300 * 1024) } })), /config\.annotations: keys and values together exceed/],
    ['four DNS servers', pod((c) => ({ ...c, dns_config: { servers: ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'], searches: [], options: [] } })), /dns_config\.servers: 4 servers, at most 3/],
    ['NUL in a DNS search domain', pod((c) => ({ ...c, dns_config: { servers: ['10.0.0.10'], searches: ['a\0b'], options: [] } })), /config\.dns_config\.searches\[0\]: contains a NUL byte/],
  ];
  for (const [label, config, pattern] of cases) {
    await test(label, () => refused(call(rt(), rt().RunPodSandbox, { config }, 30_000), grpc.status.INVALID_ARGUMENT, pattern));
  }
  // kubelet's client sends up to 16 MiB: a 10 MiB map reaches crisp's own bound; past 16 MiB the
  // transport refuses the message itself.
  await refused(call(rt(), rt().RunPodSandbox, { config: pod((c) => ({ ...c, annotations: { big: 'b'.repeat(10 << 20) } })) }, 30_000),
    grpc.status.INVALID_ARGUMENT, /config\.annotations: keys and values together exceed/);
  await refused(call(rt(), rt().RunPodSandbox, { config: pod((c) => ({ ...c, annotations: { big: 'b'.repeat(17 << 20) } })) }, 30_000),
    grpc.status.RESOURCE_EXHAUSTED, /larger than max/i);
  const pods = (await call(rt(), rt().ListPodSandbox, {})).items;
  assert.deepEqual(pods.map((p) => p.id), [podId], 'no pod was made');
  assert.ok(!existsSync(resolve(relative)) && !existsSync(resolve('..', relative)), 'no relative log directory was made');
  for (const h of readdirSync('/sys/fs/cgroup')) assert.ok(!existsSync(join('/sys/fs/cgroup', h, relative)), `no cgroup under ${h}`);
  // The same connection still answers (a megabyte trailer once hung it).
  assert.equal((await call(rt(), rt().Version, {})).runtime_name, 'crisp');
});

test('bad CreateContainer and UpdateContainerResources requests are INVALID_ARGUMENT naming the field, and make nothing', async () => {
  const container = (extra: Partial<ContainerConfig>): ContainerConfig =>
    ({ metadata: { name: `c${n++}`, attempt: 0 }, image: { image: node.image }, command: ['sleep', '60'], ...extra });
  const resources = (r: Record<string, unknown>) => container({ linux: { resources: r } });
  const cases: [string, ContainerConfig, RegExp][] = [
    ['cpuset_cpus that is no list', resources({ cpuset_cpus: '0-9999999,abc' }), /linux\.resources\.cpuset_cpus: 9999999 is above 8191/],
    ['cpuset_cpus of CPUs the node lacks', resources({ cpuset_cpus: '0-4095' }), /linux\.resources\.cpuset_cpus: CPUs .* are not online on this node/],
    ['cpuset_mems of nodes the node lacks', resources({ cpuset_mems: '7' }), /linux\.resources\.cpuset_mems: memory nodes 7 are not online/],
    ['a memory limit of 100 bytes', resources({ memory_limit_in_bytes: '100' }), /linux\.resources\.memory_limit_in_bytes: 100 is below/],
    ['negative cpu_shares', resources({ cpu_shares: '-5' }), /linux\.resources\.cpu_shares: -5 is out of range/],
    ['NUL in log_path', container({ log_path: 'a\0b.log' }), /config\.log_path: contains a NUL byte/],
    ['log_path leaving the pod directory', container({ log_path: '../../x.log' }), /config\.log_path: .* must not leave/],
    ['relative working_dir', container({ working_dir: 'rel' }), /config\.working_dir: "rel" must be an absolute path/],
    ['relative host_path', container({ mounts: [{ container_path: '/x', host_path: 'rel/dir' }] }), /mounts\[0\]\.host_path: must be an absolute path/],
    ['container named ..', container({ metadata: { name: '..', attempt: 0 } }), /config\.metadata\.name: "\.\." must be/],
    ['1 MiB image reference', container({ image: { image: 'i'.repeat(1 << 20) } }), /config\.image\.image: "i+… \(\d+ more characters\)" is longer than 1024/],
  ];
  for (const [label, config, pattern] of cases) {
    await test(label, () => refused(call(rt(), rt().CreateContainer, { pod_sandbox_id: podId, config, sandbox_config: null }, 30_000), grpc.status.INVALID_ARGUMENT, pattern));
  }
  assert.deepEqual((await call(rt(), rt().ListContainers, {})).containers, [], 'no container was made');

  const id = (await call(rt(), rt().CreateContainer, { pod_sandbox_id: podId, config: container({}), sandbox_config: null }, 30_000)).container_id;
  await refused(call(rt(), rt().UpdateContainerResources, { container_id: id, linux: { cpuset_cpus: 'abc' } }), grpc.status.INVALID_ARGUMENT, /linux\.resources\.cpuset_cpus: "abc" is not a list/);
  await refused(call(rt(), rt().UpdateContainerResources, { container_id: id, linux: { memory_limit_in_bytes: '4096' } }), grpc.status.INVALID_ARGUMENT, /memory_limit_in_bytes: 4096 is below/);
  await refused(call(rt(), rt().ExecSync, { container_id: id, cmd: ['echo', 'a\0b'], timeout: 5 }), grpc.status.INVALID_ARGUMENT, /cmd\[1\]: contains a NUL byte/);
  await refused(call(rt(), rt().UpdatePodSandboxResources, { pod_sandbox_id: podId, resources: { cpuset_cpus: 'abc' } }), grpc.status.INVALID_ARGUMENT, /resources\.cpuset_cpus: "abc" is not a list/);
  await call(rt(), rt().RemoveContainer, { container_id: id });
});

test('bad image references are INVALID_ARGUMENT quoting a short prefix', async () => {
  const huge = 'r'.repeat(1 << 20);
  await refused(call(img(), img().PullImage, { image: { image: huge } }), grpc.status.INVALID_ARGUMENT, /"r+… \(\d+ more characters\)": longer than 1024/);
  await refused(call(img(), img().ImageStatus, { image: { image: huge } }), grpc.status.INVALID_ARGUMENT, /longer than 1024/);
  await refused(call(img(), img().RemoveImage, { image: { image: huge } }), grpc.status.INVALID_ARGUMENT, /longer than 1024/);
});

test('an image whose layers use absolute names, inner .. and absolute hard-link targets pulls and runs', async () => {
  await call(img(), img().PullImage, { image: { image: oddImage } }, 60_000);
  const config: ContainerConfig = { metadata: { name: `odd${n++}`, attempt: 0 }, image: { image: oddImage }, command: ['sleep', '60'] };
  const { container_id } = await call(rt(), rt().CreateContainer, { pod_sandbox_id: podId, config, sandbox_config: null }, 60_000);
  await call(rt(), rt().StartContainer, { container_id }, 30_000);
  const out = await call(rt(), rt().ExecSync, { container_id, cmd: ['sh', '-c', 'cat /odd/abs.txt /odd/inner.txt /odd/hard.txt; ls /odd; stat -c %i /odd/abs.txt /odd/hard.txt'], timeout: 10 }, 30_000);
  const lines = out.stdout.toString().trim().split('\n');
  assert.deepEqual(lines.slice(0, 4), ['absolute', 'inner', 'absolute', 'abs.txt'], out.stderr.toString());
  assert.deepEqual(lines.slice(4, 6), ['hard.txt', 'inner.txt'], 'no x directory: it was only a step of a cleaned path');
  assert.equal(lines[6], lines[7], 'the hard link shares the file\'s inode');
  await call(rt(), rt().StopContainer, { container_id, timeout: 0 }, 30_000);
  await call(rt(), rt().RemoveContainer, { container_id });
});

test('hostile images are refused with FAILED_PRECONDITION saying why, and leave nothing behind', async () => {
  const host = node.registry.host;
  const pull = (repo: string) => call(img(), img().PullImage, { image: { image: `${host}/crisp-test/${repo}:latest` } }, 120_000);
  await refused(pull('too-many-layers'), grpc.status.FAILED_PRECONDITION, /the manifest lists 501 layers; overlayfs stacks at most 500/);
  await refused(pull('zstd-bomb'), grpc.status.FAILED_PRECONDITION, /unpacks to more than \d+ bytes, over 1100 times its \d+ compressed bytes \(max_layer_expansion\): refused as a decompression bomb/);
  await refused(pull('lying-config'), grpc.status.FAILED_PRECONDITION, /size mismatch: expected \d+ bytes, received more/);
  await refused(pull('lying-layer'), grpc.status.FAILED_PRECONDITION, /size mismatch: expected \d+ bytes, received \d+/);
  const images = (await call(img(), img().ListImages, {})).images.flatMap((i) => i.repo_tags);
  assert.ok(!images.some((t) => /too-many|bomb|lying/.test(t)), `none is listed: ${images.join(', ')}`);
  await eventually(() => assert.deepEqual(readdirSync(join(node.daemon.root, 'layers', 'tmp')), [], 'no partial layer is left'));
});

test('a header-list bomb and malformed frames on the daemon socket cut their connection; the daemon goes on', async () => {
  const socket = node.daemon.socket;
  assert.equal(await sendRaw(socket, [PREFACE, SETTINGS, ...bombFrames(1, 200_000)]), 'closed', 'a first-block bomb');
  const good = frame(0x1, 0x4, 1, requestBlock('localhost'));
  const data = frame(0x0, 0x1, 1, Buffer.from([0, 0, 0, 0, 0]));
  await sendRaw(socket, [PREFACE, SETTINGS, good, data, ...bombFrames(3, 200_000)]);
  assert.equal(await sendRaw(socket, [PREFACE, SETTINGS, frame(0x1, 0x4 | 0x8, 1, Buffer.from([200, 0x82]))]), 'closed', 'bad padding');
  assert.equal(await sendRaw(socket, [PREFACE, SETTINGS, frame(0x1, 0x4, 1, Buffer.alloc(10), 16 * 1024 * 1024 - 1)]), 'closed', 'a giant frame');
  assert.equal(await versionAnswers(socket), true);
  assert.equal(node.daemon.process.exitCode, null, 'the daemon is alive');
  assert.equal((await call(rt(), rt().Version, {})).runtime_name, 'crisp');
});
