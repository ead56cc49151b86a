// Journal records by kind: a test that reads a host device's snapshot or a veth's host end first
// checks that the record is of that kind.
import type { DeviceRecord } from '../../src/state/journal-records';

export function ofKind<K extends DeviceRecord['kind']>(rec: DeviceRecord | undefined, kind: K): Extract<DeviceRecord, { kind: K }> {
  if (rec?.kind !== kind) throw new Error(`expected a ${kind} record, got ${rec ? rec.kind : 'none'}`);
  return rec as Extract<DeviceRecord, { kind: K }>;
}
