// Playing the kubelet against containerd's CRI plugin: a private containerd (its own root, state,
// socket, CNI dirs) started in the simulated host, a local sandbox image built from busybox with
// buildah, and a small gRPC client of the CRI's RuntimeService (gRPC is HTTP/2 with 5-byte framed
// protobuf messages; the few messages used here are encoded by hand, field numbers as in the CRI's
// api.proto, runtime.v1).
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OCI_NETDEV } from './hook';
import { DEBIAN_CNI } from './cni';
import { inSimHost, mountPoints, Sandbox, shOk } from './sandbox';

// --- protobuf, as much as these messages need ---------------------------------------------------

function varint(n: number): Buffer {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return Buffer.from(out);
}

const bytesField = (no: number, payload: Buffer) => Buffer.concat([varint((no << 3) | 2), varint(payload.length), payload]);
const stringField = (no: number, s: string) => bytesField(no, Buffer.from(s));
const intField = (no: number, v: number) => Buffer.concat([varint(no << 3), varint(v)]);

/** The fields of a message by number: varints as numbers, length-delimited ones as bytes. */
type Fields = Map<number, Array<number | Buffer>>;

function decode(buf: Buffer): Fields {
  const fields: Fields = new Map();
  let i = 0;
  const readVarint = () => {
    let n = 0;
    for (let shift = 1; ; shift *= 128) {
      const b = buf[i++];
      n += (b & 0x7f) * shift;
      if (!(b & 0x80)) return n;
    }
  };
  while (i < buf.length) {
    const key = readVarint();
    const wire = key & 7;
    let value: number | Buffer;
    if (wire === 0) value = readVarint();
    else if (wire === 2) {
      const len = readVarint();
      value = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 1 || wire === 5) {
      value = buf.subarray(i, i + (wire === 1 ? 8 : 4));
      i += wire === 1 ? 8 : 4;
    } else throw new Error(`protobuf wire type ${wire} is not read here`);
    const no = Math.floor(key / 8);
    fields.set(no, [...(fields.get(no) ?? []), value]);
  }
  return fields;
}

const first = (f: Fields, no: number) => f.get(no)?.[0];
const text = (f: Fields, no: number) => (first(f, no) as Buffer | undefined)?.toString('utf8');

// --- gRPC ---------------------------------------------------------------------------------------

/** One unary call of runtime.v1.RuntimeService; rejects with the gRPC status and message. */
function call(socket: string, method: string, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect('http://localhost', { createConnection: () => net.connect(socket) });
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': `/runtime.v1.RuntimeService/${method}`, 'content-type': 'application/grpc', te: 'trailers' });
    const chunks: Buffer[] = [];
    let status: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) status = h; // a trailers-only answer
    });
    req.on('trailers', (h) => (status = h));
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('error', reject);
    req.on('end', () => {
      session.close();
      if (status['grpc-status'] !== '0') {
        reject(new Error(`${method}: gRPC status ${String(status['grpc-status'])}: ${decodeURIComponent(String(status['grpc-message'] ?? ''))}`));
        return;
      }
      const all = Buffer.concat(chunks);
      resolve(all.subarray(5, 5 + all.readUInt32BE(1)));
    });
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(body.length, 1);
    req.end(Buffer.concat([frame, body]));
  });
}

export interface SandboxStatus {
  /** SANDBOX_READY (0) or SANDBOX_NOTREADY (1). */
  state: 'ready' | 'notready';
  ip: string | undefined;
  /** The pod's network namespace path, from the verbose info's runtime spec. */
  netns: string | undefined;
}

/** The kubelet's side of the pod sandbox calls. */
export class CriClient {
  constructor(private readonly socket: string) {}

  async runPodSandbox(name: string, uid: string, logDir: string): Promise<string> {
    const metadata = Buffer.concat([stringField(1, name), stringField(2, uid), stringField(3, 'default'), intField(4, 0)]);
    // PodSandboxConfig: metadata 1, hostname 2, log_directory 3, linux 8.
    const config = Buffer.concat([bytesField(1, metadata), stringField(2, name), stringField(3, logDir), bytesField(8, Buffer.alloc(0))]);
    return text(decode(await call(this.socket, 'RunPodSandbox', bytesField(1, config))), 1)!;
  }

  async podSandboxStatus(id: string): Promise<SandboxStatus> {
    const reply = decode(await call(this.socket, 'PodSandboxStatus', Buffer.concat([stringField(1, id), intField(2, 1)])));
    const status = decode(first(reply, 1) as Buffer);
    const network = first(status, 5) as Buffer | undefined;
    let netns: string | undefined;
    for (const entry of (reply.get(2) ?? []) as Buffer[]) {
      const kv = decode(entry);
      if (text(kv, 1) !== 'info') continue;
      const info = JSON.parse(text(kv, 2) ?? '{}') as { runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } } };
      netns = info.runtimeSpec?.linux?.namespaces?.find((n) => n.type === 'network')?.path;
    }
    return { state: ((first(status, 3) as number | undefined) ?? 0) === 0 ? 'ready' : 'notready', ip: network && text(decode(network), 1), netns };
  }

  async stopPodSandbox(id: string): Promise<void> {
    await call(this.socket, 'StopPodSandbox', stringField(1, id));
  }

  async removePodSandbox(id: string): Promise<void> {
    await call(this.socket, 'RemovePodSandbox', stringField(1, id));
  }
}

// --- the daemon ---------------------------------------------------------------------------------

export interface Containerd {
  cri: CriClient;
  /** Its CNI conf dir (conf_dir), where a test writes its conflist. */
  confDir: string;
  logDir: string;
}

const SANDBOX_IMAGE = 'localhost/oci-netdev-test-pause:1';

/** Processes whose command line names `needle` (the daemon and its shims), by pid. */
function processesNaming(needle: string): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle);
    } catch {
      return false;
    }
  }).map(Number);
}

/**
 * A private containerd in `simhost`, its CRI plugin with snapshotter native, the sandbox image
 * imported, CNI plugins found in its own bin dir (oci-netdev keeping its state in `stateDir`, Debian's
 * loopback and host-local).
 * Sets the simulated host's lo up. Teardown stops the daemon and its shims and removes its mounts
 * and folders.
 */
export async function startContainerd(sb: Sandbox, simhost: string, stateDir: string): Promise<Containerd> {
  const dir = sb.tempDir('containerd');
  const [root, state, binDir, confDir, logDir] = ['root', 'state', 'cnibin', 'net.d', 'logs'].map((d) => join(dir, d));
  for (const d of [binDir, confDir, logDir]) mkdirSync(d);
  // The node's state dir, as root installs it: a network config may not choose it.
  writeFileSync(join(binDir, 'oci-netdev'), `#!/bin/sh\nOCI_NETDEV_STATE_DIR='${stateDir}' exec '${OCI_NETDEV}' "$@"\n`, { mode: 0o755 });
  for (const p of ['loopback', 'host-local']) symlinkSync(join(DEBIAN_CNI, p), join(binDir, p));
  const socket = join(dir, 'containerd.sock');
  // restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE.
  writeFileSync(join(dir, 'config.toml'), `version = 2
root = "${root}"
state = "${state}"
[grpc]
  address = "${socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${SANDBOX_IMAGE}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${binDir}"
    conf_dir = "${confDir}"
`);
  // The CRI's streaming server listens on 127.0.0.1.
  shOk('ip', ['-n', simhost, 'link', 'set', 'lo', 'up']);
  const [cmd, args] = inSimHost(simhost, ['containerd', '--config', join(dir, 'config.toml')]);
  const log = join(dir, 'containerd.log');
  const daemon = spawn(cmd, args, { stdio: ['ignore', 'ignore', openSync(log, 'w')] });
  sb.defer(() => {
    // The daemon and the shims it started (their command lines name its socket), then what they mounted.
    for (const pid of [daemon.pid!, ...processesNaming(socket)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const mp of mountPoints().filter((m) => m.startsWith(dir + '/')).reverse()) shOk('umount', ['--lazy', mp]);
  });
  for (let i = 0; !readFileSync(log, 'utf8').includes('containerd successfully booted'); i++) {
    if (i > 600 || daemon.exitCode !== null) throw new Error(`containerd did not start (exit ${daemon.exitCode}): ${readFileSync(log, 'utf8').slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // The sandbox image: busybox sleeping, from scratch, as an OCI archive imported for the CRI (namespace k8s.io).
  const storage = ['--root', join(dir, 'buildah'), '--runroot', join(dir, 'buildah-run'), '--storage-driver', 'vfs'];
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  shOk('cp', ['/bin/busybox', join(rootfs, 'bin/busybox')]);
  const ctr = shOk('buildah', [...storage, 'from', 'scratch']).trim();
  shOk('buildah', [...storage, 'copy', ctr, rootfs + '/', '/']);
  shOk('buildah', [...storage, 'config', '--entrypoint', '["/bin/busybox","sleep","2147483647"]', ctr]);
  shOk('buildah', [...storage, 'commit', '-q', ctr, SANDBOX_IMAGE]);
  const archive = join(dir, 'pause.tar');
  shOk('buildah', [...storage, 'push', '-q', SANDBOX_IMAGE, `oci-archive:${archive}:${SANDBOX_IMAGE}`]);
  shOk('buildah', [...storage, 'rm', ctr]);
  try {
    shOk('ctr', ['-a', socket, '-n', 'k8s.io', 'image', 'import', '--snapshotter', 'native', archive]);
  } catch (err) {
    throw new Error(`${(err as Error).message}; containerd (exit ${daemon.exitCode}) said: ${readFileSync(log, 'utf8').slice(-1500)}`, { cause: err });
  }
  rmSync(rootfs, { recursive: true });
  return { cri: new CriClient(socket), confDir, logDir };
}
