// Where reports go, so that they outlive the runtime (runc, crun and podman drop a successful
// hook's stderr): warnings and errors to stderr, every event to the system log (/dev/log, which
// journald or rsyslog reads) and, if asked, appended to a log file. Logging never fails the hook:
// no /dev/log means no syslog lines, a log file that cannot be opened is one warning.

import * as fs from 'fs';
import * as libc from '../../native/libc';
import { openAppend, writeAll } from '../fsio/files';
import { causeOf } from '../errors';

export type Level = 'info' | 'warning' | 'error';

/** The syslog tag. */
const TAG = 'oci-netdev';
const SYSLOG_SOCKET = '/dev/log';
const FACILITY_DAEMON = 3;
const SEVERITY: Record<Level, number> = { error: 3, warning: 4, info: 6 };

/** One line: no newlines inside, so a message is one log record. */
const oneLine = (message: string): string => message.replace(/\s*\n\s*/g, ' ');

/** The RFC 3164-style datagram for the local syslog socket: `<PRI>oci-netdev[PID]: container ID: message`. */
export function syslogRecord(level: Level, message: string, containerId: string | undefined, pid: number): string {
  const pri = FACILITY_DAEMON * 8 + SEVERITY[level];
  return `<${pri}>${TAG}[${pid}]: ${containerId !== undefined ? `container ${containerId}: ` : ''}${oneLine(message)}`;
}

/** A log file line: ISO time, level, container id (`-` when none), message. */
export function fileRecord(time: Date, level: Level, message: string, containerId: string | undefined): string {
  return `${time.toISOString()} ${level} ${containerId ?? '-'} ${oneLine(message)}\n`;
}

export interface LoggerOptions {
  /** Append every event to this file (--log-file, OCI_NETDEV_LOG_FILE). */
  file?: string;
  /** The syslog socket; tests point it elsewhere. */
  syslogSocket?: string;
  /** Where warnings and errors are shown. */
  stderr?: (text: string) => void;
}

export class Logger {
  /** The container the events are about, once the hook has read its state. */
  containerId?: string;
  private readonly stderr: (text: string) => void;
  private syslogFd: number | null | undefined;
  private fileFd: number | null | undefined;

  constructor(private readonly opts: LoggerOptions = {}) {
    this.stderr = opts.stderr ?? ((text) => process.stderr.write(text));
  }

  /** A change to the host, for the logs only. */
  info(message: string, containerId = this.containerId): void {
    this.record('info', message, containerId);
  }

  warn(message: string, containerId = this.containerId): void {
    this.stderr(`${TAG}: WARNING: ${oneLine(message)}\n`);
    this.record('warning', message, containerId);
  }

  error(message: string, containerId = this.containerId): void {
    this.stderr(`${TAG}: ${oneLine(message)}\n`);
    this.record('error', message, containerId);
  }

  close(): void {
    if (typeof this.syslogFd === 'number') libc.close(this.syslogFd);
    if (typeof this.fileFd === 'number') fs.closeSync(this.fileFd);
    this.syslogFd = this.fileFd = undefined;
  }

  private record(level: Level, message: string, containerId: string | undefined): void {
    const syslog = this.syslog();
    if (syslog !== null) {
      try {
        libc.sendDatagram(syslog, Buffer.from(syslogRecord(level, message, containerId, process.pid)));
      } catch {
        // A full or vanished syslog reader loses this line; the hook goes on.
      }
    }
    const file = this.file();
    if (file !== null) {
      try {
        writeAll(file, Buffer.from(fileRecord(new Date(), level, message, containerId)));
      } catch (err) {
        this.fileFd = null;
        fs.closeSync(file);
        this.stderr(`${TAG}: WARNING: cannot write log file ${this.opts.file}: ${causeOf(err)}\n`);
      }
    }
  }

  /** The syslog socket, connected on first use; null when there is none. */
  private syslog(): number | null {
    if (this.syslogFd === undefined) {
      try {
        this.syslogFd = libc.unixDatagramSocket(this.opts.syslogSocket ?? SYSLOG_SOCKET);
      } catch {
        this.syslogFd = null;
      }
    }
    return this.syslogFd;
  }

  /** The log file, opened on first use; null when none was asked for or it cannot be opened. */
  private file(): number | null {
    if (this.fileFd === undefined) {
      this.fileFd = null;
      if (this.opts.file !== undefined) {
        try {
          this.fileFd = openAppend(this.opts.file);
        } catch (err) {
          this.stderr(`${TAG}: WARNING: cannot open log file ${this.opts.file}: ${(err as Error).message}\n`);
        }
      }
    }
    return this.fileFd;
  }
}
