// The folders of the state directory: a container's folder is its id %-encoded into one path
// component (hashed when too long), and every folder we use must be ours alone.

import * as fs from 'node:fs';
import { StateError } from '../errors';
import { sha256Hex as sha256 } from './sha256';

/** NAME_MAX: the longest path component. */
const MAX_COMPONENT_BYTES = 255;
/** How much of an id too long for a folder name its folder's name keeps, before the hash. */
const HASHED_PREFIX_BYTES = 64;
/** In a hashed folder (see folderName): the id it belongs to. */
export const ID_FILE = 'id';
export const MAX_ID_BYTES = 64 * 1024;

/** A container id as one safe path component: anything but [A-Za-z0-9_-] is %-encoded. */
export function encodeId(id: string): string {
  return Buffer.from(id, 'utf8').toString('latin1').replace(/[^A-Za-z0-9_-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * The folder name of an id whose encoding is longer than a path component may be (a CNI
 * attachment of a long network name and container id): a readable prefix, '=' (which encodeId
 * never writes) and the id's sha256, so that ids alike in their first bytes stay apart. The full
 * id is kept in the folder's file `id`, and in its journal.
 */
export function folderName(id: string): string {
  const name = encodeId(id);
  return Buffer.byteLength(name) <= MAX_COMPONENT_BYTES ? name : `${name.slice(0, HASHED_PREFIX_BYTES)}=${sha256(id)}`;
}

export const isHashedFolder = (name: string): boolean => name.includes('=');

export function decodeId(name: string): string {
  return Buffer.from(name.replace(/%([0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}

/**
 * Refuses a directory that is a symlink, not a directory, someone else's, or writable by group or
 * others: whoever could write in it could plant links where we write journals and mount pins.
 */
export function checkDir(dir: string, what: string): void {
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink()) throw new StateError(`${what} ${dir} is a symbolic link; refusing to use it`);
  if (!st.isDirectory()) throw new StateError(`${what} ${dir} is not a directory`);
  checkOwner(st, dir, what);
  if (st.mode & 0o022) {
    throw new StateError(`${what} ${dir} is writable by group or others (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}); refusing to use it`);
  }
}

export function checkOwner(st: fs.Stats, file: string, what: string): void {
  const me = process.geteuid!();
  if (st.uid !== me) throw new StateError(`${what} ${file} is owned by uid ${st.uid}, not by us (uid ${me}); refusing to use it`);
}
