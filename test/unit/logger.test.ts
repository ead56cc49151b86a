// The log records and where they go: stderr for warnings and errors only, a syslog datagram for
// every event, a line in the log file; and a log file that cannot be used never stops the caller.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { fileRecord, Logger, syslogRecord } from '../../src/log/logger';
import { openAppend } from '../../src/fsio/files';
import { listenSyslog } from '../helpers/syslog';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oci-netdev-log-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('syslog records: facility daemon, severity by level, tag with pid, container id', async (t) => {
  t.equal(syslogRecord('info', 'device eth1: moveIn', 'c1', 42), '<30>oci-netdev[42]: container c1: device eth1: moveIn');
  t.equal(syslogRecord('warning', 'restored as eth1-r0', 'c1', 42), '<28>oci-netdev[42]: container c1: restored as eth1-r0');
  t.equal(syslogRecord('error', 'no such device', 'c1', 42), '<27>oci-netdev[42]: container c1: no such device');
  t.equal(syslogRecord('info', 'gc: nothing', undefined, 7), '<30>oci-netdev[7]: gc: nothing', 'no container: no prefix');
  t.equal(syslogRecord('error', 'two\n  lines', 'c1', 1), '<27>oci-netdev[1]: container c1: two lines', 'one line');
});

t.test('file records: ISO time, level, container id, message', async (t) => {
  const at = new Date('2026-01-02T03:04:05.678Z');
  t.equal(fileRecord(at, 'warning', 'restored as eth1-r0', 'c1'), '2026-01-02T03:04:05.678Z warning c1 restored as eth1-r0\n');
  t.equal(fileRecord(at, 'info', 'a\nb', undefined), '2026-01-02T03:04:05.678Z info - a b\n');
});

t.test('a logger sends every event to syslog and the file, and only warnings and errors to stderr', async (t) => {
  const listener = listenSyslog(path.join(tmp, 'log.sock'));
  t.teardown(() => listener.close());
  const file = path.join(tmp, 'events.log');
  const shown: string[] = [];
  const log = new Logger({ file, syslogSocket: listener.path, stderr: (s) => shown.push(s) });
  log.containerId = 'ctr-1';
  log.info('device eth1: moveIn');
  log.warn('device eth1: restored as eth1-r0');
  log.error('device eth2: ENODEV');
  log.info('gc: restored', 'ctr-2');
  log.close();

  t.same(shown, ['oci-netdev: WARNING: device eth1: restored as eth1-r0\n', 'oci-netdev: device eth2: ENODEV\n']);
  t.same(listener.drain(), [
    `<30>oci-netdev[${process.pid}]: container ctr-1: device eth1: moveIn`,
    `<28>oci-netdev[${process.pid}]: container ctr-1: device eth1: restored as eth1-r0`,
    `<27>oci-netdev[${process.pid}]: container ctr-1: device eth2: ENODEV`,
    `<30>oci-netdev[${process.pid}]: container ctr-2: gc: restored`,
  ]);
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  t.match(lines, [
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info ctr-1 device eth1: moveIn$/,
    /^\S+ warning ctr-1 device eth1: restored as eth1-r0$/,
    /^\S+ error ctr-1 device eth2: ENODEV$/,
    /^\S+ info ctr-2 gc: restored$/,
  ]);
  t.equal(lines.length, 4);
  t.equal(fs.statSync(file).mode & 0o777, 0o600, 'created 0600');

  // A second logger appends.
  const again = new Logger({ file, syslogSocket: listener.path, stderr: () => {} });
  again.info('more');
  again.close();
  t.equal(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 5, 'appended');
});

t.test('no syslog socket: the event still reaches the file, silently', async (t) => {
  const file = path.join(tmp, 'nosyslog.log');
  const shown: string[] = [];
  const log = new Logger({ file, syslogSocket: path.join(tmp, 'absent.sock'), stderr: (s) => shown.push(s) });
  log.info('device eth1: moveIn');
  log.close();
  t.same(shown, []);
  t.match(fs.readFileSync(file, 'utf8'), / info - device eth1: moveIn\n$/);
});

t.test('a log file that cannot be used is one warning; the caller goes on', async (t) => {
  const target = path.join(tmp, 'target.log');
  fs.writeFileSync(target, '');
  const link = path.join(tmp, 'link.log');
  fs.symlinkSync(target, link);
  const fifo = path.join(tmp, 'fifo.log');
  execFileSync('mkfifo', [fifo]);
  for (const [file, why] of [
    [link, /it is a symbolic link/],
    [fifo, /ENXIO/], // no reader: O_NONBLOCK makes the open fail instead of waiting for one
    [tmp, /EISDIR/],
    [path.join(tmp, 'no/such/dir.log'), /ENOENT/],
  ] as const) {
    const shown: string[] = [];
    const log = new Logger({ file, syslogSocket: path.join(tmp, 'absent.sock'), stderr: (s) => shown.push(s) });
    t.doesNotThrow(() => {
      log.info('one');
      log.warn('two');
      log.close();
    }, file);
    t.equal(shown.filter((s) => s.includes('cannot open log file')).length, 1, `${file}: one warning about the file`);
    t.match(shown.find((s) => s.includes('cannot open log file')), why);
    t.ok(shown.includes('oci-netdev: WARNING: two\n'), `${file}: the warning itself still shown`);
  }
  t.equal(fs.readFileSync(target, 'utf8'), '', 'nothing written through the link');
  // A FIFO with a reader opens, and is refused for what it is.
  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  t.teardown(() => fs.closeSync(reader));
  t.throws(() => openAppend(fifo), /not a regular file/);
  t.throws(() => openAppend(link), /symbolic link/);
});
