// Names of everything a test creates. Every artefact belongs to one fixed family, so the leak
// check (a separate process) can find leftovers of any run:
//   network devices   ont<run>-<role><n>        (at most 15 bytes, the kernel's limit)
//   netns, container  ondt-<run>-<role>-<n>
//   files             /run/oci-netdev-test-<run>/...
import { randomBytes } from 'node:crypto';

export const DEV_PREFIX = 'ont';
export const NAME_PREFIX = 'ondt-';
export const RUN_DIR_PREFIX = '/run/oci-netdev-test-';

/** Four hex digits, fresh for each test process. */
const RUN_ID = randomBytes(2).toString('hex');
export const RUN_DIR = RUN_DIR_PREFIX + RUN_ID;

const IFNAMSIZ = 15;
let counter = 0;

/** A kernel-valid device name, unique within this run: `ont<run>-<role><n>`. */
export function uniqueName(role: string): string {
  const head = `${DEV_PREFIX}${RUN_ID}-`;
  const n = String(++counter);
  return head + role.slice(0, IFNAMSIZ - head.length - n.length) + n;
}

/** A netns name or container id, unique within this run: `ondt-<run>-<role>-<n>`. */
export function uniqueId(role: string): string {
  return `${NAME_PREFIX}${RUN_ID}-${role}-${++counter}`;
}
