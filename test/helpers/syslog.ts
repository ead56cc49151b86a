// A stand-in syslog daemon: a unix datagram socket bound at a path, read without waiting.
import * as libc from '../../native/libc';
import { SyscallError } from '../../src/errors';

export interface SyslogListener {
  path: string;
  /** Every datagram received so far, as text. */
  drain(): string[];
  close(): void;
}

export function listenSyslog(path: string): SyslogListener {
  const fd = libc.unixDatagramSocket(path, 'bind');
  const buf = Buffer.alloc(64 * 1024);
  return {
    path,
    drain(): string[] {
      const out: string[] = [];
      for (;;) {
        try {
          const n = libc.receive(fd, buf);
          out.push(buf.toString('utf8', 0, n));
        } catch (err) {
          if (err instanceof SyscallError && err.errnoName === 'EAGAIN') return out;
          throw err;
        }
      }
    },
    close: () => libc.close(fd),
  };
}
