// The hook's netlink sockets hear the kernel only. Another netlink socket in the same namespace (a
// process in the container that read the hook's port from /proc/net/netlink) sends forged replies
// with the right sequence number, and floods the port, while the hook's socket works.
import t, { Test } from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import * as libc from '../../native/libc';
import { MessageBuilder, encodeIfInfo } from '../../src/netlink/codec';
import {
  IFLA_IFNAME, NETLINK_ROUTE, NLM_F_MULTI, NLMSG_DONE, NLMSG_ERROR, RTM_NEWLINK,
} from '../../src/netlink/constants';
import { NetlinkSocket } from '../../src/netlink/client';
import { getLink, listLinks } from '../../src/netlink/link';
import { Netns } from '../../src/netns/netns';
import { NetlinkError, SyscallError } from '../../src/errors';
import { uniqueName } from '../helpers/names';
import { inSimHost, netnsPath, REPO_ROOT, Sandbox } from '../helpers/sandbox';

/** A socket of the hook's kind inside the namespace `ns`. */
function socketIn(ns: string): NetlinkSocket {
  const handle = Netns.open(netnsPath(ns));
  try {
    return handle.socket();
  } finally {
    handle.close();
  }
}

/** Runs `fn` with the calling thread in namespace `ns`. */
function inNetns<T>(ns: string, fn: () => T): T {
  const target = Netns.open(netnsPath(ns));
  const home = Netns.current();
  try {
    libc.setns(target.fd, libc.CLONE_NEWNET);
    try {
      return fn();
    } finally {
      libc.setns(home.fd, libc.CLONE_NEWNET);
    }
  } finally {
    target.close();
    home.close();
  }
}

/** The sequence number the socket will put on its next request. */
const nextSeq = (sock: NetlinkSocket): number => ((sock as unknown as { seq: number }).seq + 1) >>> 0 || 1;

/** Sends a forged message from another socket; true if the kernel let it through. */
function forge(attacker: number, victim: NetlinkSocket, msg: Buffer): boolean {
  try {
    libc.sendToPort(attacker, msg, victim.port);
    return true;
  } catch (err) {
    if (err instanceof SyscallError && err.errnoName === 'ECONNREFUSED') return false;
    throw err;
  }
}

function forgedError(seq: number, port: number, errno: number): Buffer {
  const m = new MessageBuilder(NLMSG_ERROR, 0).raw(Buffer.alloc(4)).raw(Buffer.alloc(16)).finish(seq);
  m.writeUInt32LE(port, 12);
  m.writeInt32LE(-errno, 16);
  return m;
}

function forgedLink(seq: number, port: number, name: string): Buffer {
  const m = new MessageBuilder(RTM_NEWLINK, NLM_F_MULTI).raw(encodeIfInfo({ index: 4242 })).str(IFLA_IFNAME, name).finish(seq);
  m.writeUInt32LE(port, 12);
  return m;
}

function forgedDone(seq: number, port: number): Buffer {
  const m = new MessageBuilder(NLMSG_DONE, NLM_F_MULTI).raw(Buffer.alloc(4)).finish(seq);
  m.writeUInt32LE(port, 12);
  return m;
}

t.test('forged replies with the right sequence number are not read', async (t) => {
  const sb = new Sandbox(t);
  const ns = sb.createNetns('forge');
  const sock = socketIn(ns);
  t.teardown(() => sock.close());
  const attacker = inNetns(ns, () => libc.netlinkSocket(NETLINK_ROUTE));
  t.teardown(() => libc.close(attacker));

  // A forged refusal for a request that would succeed.
  forge(attacker, sock, forgedError(nextSeq(sock), sock.port, 1 /* EPERM */));
  t.equal(getLink(sock, { name: 'lo' })?.name, 'lo', 'a forged EPERM does not fail the request');

  // A forged ack for a request the kernel refuses.
  const missing = uniqueName('none');
  forge(attacker, sock, forgedError(nextSeq(sock), sock.port, 0));
  t.throws(() => sock.request(
    new MessageBuilder(19 /* RTM_SETLINK */, 0).raw(encodeIfInfo({})).str(IFLA_IFNAME, missing),
    { op: 'set link', device: missing },
  ), NetlinkError, 'a forged ack does not hide the kernel\'s refusal');

  // A forged device, then a forged end, inside a dump.
  const fake = uniqueName('fake');
  const seq = nextSeq(sock);
  forge(attacker, sock, forgedLink(seq, sock.port, fake));
  forge(attacker, sock, forgedDone(seq, sock.port));
  const names = listLinks(sock).map((l) => l.name);
  t.same(names, ['lo'], 'the dump holds the kernel\'s devices only');

  // The kernel refuses the forger outright: the socket is connected to it.
  t.notOk(forge(attacker, sock, forgedError(nextSeq(sock), sock.port, 1)), 'the kernel refuses a unicast from user space');
});

/** A child process in `ns` that sends forged datagrams to `port` until killed; resolves once it runs. */
async function flooder(t: Test, ns: string, port: number): Promise<() => Promise<string>> {
  const script = `
    const libc = require(${JSON.stringify(join(REPO_ROOT, 'dist/native/libc.js'))});
    const fd = libc.netlinkSocket(0);
    const port = ${port};
    let tried = 0, refused = 0;
    process.on('SIGTERM', () => { process.stdout.write(JSON.stringify({ tried, refused })); process.exit(0); });
    process.stdout.write('ready\\n');
    const junk = Buffer.alloc(64, 0xff);
    const bogus = Buffer.alloc(2048);
    bogus.writeUInt32LE(4096, 0); // a length past the datagram: undecodable
    let seq = 0;
    const burst = () => {
      for (let i = 0; i < 256; i++, seq++) {
        const err = Buffer.alloc(36);
        err.writeUInt32LE(36, 0); err.writeUInt16LE(2, 4); err.writeUInt32LE(seq, 8); err.writeUInt32LE(port, 12);
        err.writeInt32LE(-1, 16);
        for (const m of [err, junk, bogus]) {
          tried++;
          try { libc.sendToPort(fd, m, port); } catch (e) { refused++; }
        }
      }
      setImmediate(burst); // lets SIGTERM in
    };
    burst();
  `;
  const [cmd, args] = inSimHost(ns, [process.execPath, '-e', script]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((ready, fail) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('ready\n')) ready();
    });
    child.on('exit', (code) => fail(new Error(`flooder exited ${code}`)));
  });
  const stop = (): Promise<string> => new Promise((done) => {
    child.removeAllListeners('exit');
    child.on('exit', () => done(out.slice('ready\n'.length)));
    child.kill('SIGTERM');
  });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  return stop;
}

t.test('a flood of forged datagrams does not break requests or dumps', async (t) => {
  const sb = new Sandbox(t);
  const ns = sb.createNetns('flood');
  const sock = socketIn(ns);
  t.teardown(() => sock.close());
  const stop = await flooder(t, ns, sock.port);

  let failures = 0;
  let first: unknown;
  for (let i = 0; i < 300; i++) {
    try {
      if (getLink(sock, { name: 'lo' })?.name !== 'lo') throw new Error('lo not found');
      const names = listLinks(sock).map((l) => l.name);
      if (names.join() !== 'lo') throw new Error(`dump gave ${names.join()}`);
    } catch (err) {
      failures++;
      first ??= err;
    }
  }
  const counts = JSON.parse(await stop()) as { tried: number; refused: number };
  t.ok(counts.tried > 0, `the flooder sent (${counts.tried} tries)`);
  t.equal(failures, 0, 'every request and dump succeeded', { first: String(first) });
  t.equal(counts.refused, counts.tried, 'the kernel refused every forged datagram');
});
