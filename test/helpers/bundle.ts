// OCI bundles with a busybox-static rootfs and a config.json close to `runc spec`.
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox, shOk } from './sandbox';

const BUSYBOX = '/bin/busybox';

interface OciHook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface BundleOptions {
  /** process.args, e.g. ['sh', '-c', 'ip -o addr; ip -o link']. */
  args: string[];
  /** Join this netns (linux.namespaces[type=network].path); the runtime makes a new one otherwise. */
  netnsPath?: string;
  netDevices?: Record<string, object>;
  hooks?: Record<string, OciHook[]>;
  annotations?: Record<string, string>;
}

let applets: string[] | undefined;

function makeRootfs(rootfs: string): void {
  for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'etc']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX, join(rootfs, 'bin/busybox'));
  applets ??= shOk(BUSYBOX, ['--list']).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(rootfs, 'bin', a));
}

const CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_NET_ADMIN', 'CAP_NET_RAW'];

/** A bundle dir under /run/oci-netdev-test-<run>/, removed in teardown. Returns its path. */
export function makeBundle(sb: Sandbox, opts: BundleOptions): string {
  const dir = sb.tempDir('bundle');
  makeRootfs(join(dir, 'rootfs'));
  const config = {
    // crun 1.8.1 refuses ociVersion 1.2.0 and later ("unknown version specified").
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: opts.args,
      env: ['PATH=/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS, ambient: CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'ondt',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
    ],
    ...(opts.hooks && { hooks: opts.hooks }),
    ...(opts.annotations && { annotations: opts.annotations }),
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [
        { type: 'pid' },
        { type: 'network', ...(opts.netnsPath && { path: opts.netnsPath }) },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
      ],
      ...(opts.netDevices && { netDevices: opts.netDevices }),
      maskedPaths: ['/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/sched_debug', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  return dir;
}
