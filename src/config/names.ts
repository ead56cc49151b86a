// Interface names, checked exactly as the kernel's dev_valid_name() (net/core/dev.c) checks the
// bytes it receives, plus our rule for `%d` templates.
//
// The kernel works on bytes: strnlen(name, IFNAMSIZ) must be below IFNAMSIZ, so at most 15 UTF-8
// bytes, and isspace() looks at each byte through its Latin-1 ctype table (lib/ctype.c), where
// 0xA0 is a space too. So a name holding a character whose UTF-8 form contains byte 0xA0
// (U+00A0, "à" = C3 A0, ...) is refused by the kernel, and here.
//
// Templates: the kernel's dev_alloc_name() accepts one `%d` anywhere and no other '%'; we accept it
// only at the end (DESIGN "Configuration"), and the 15-byte limit applies to the template itself.

const IFNAMSIZ = 16;

/** Bytes the kernel's isspace() is true for: \t \n \v \f \r, space, and Latin-1 NBSP. */
const KERNEL_SPACE = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0]);

export interface DevNameOptions {
  /** Accept a trailing `%d` template (default true). With false, any '%' is refused. */
  template?: boolean;
}

/** Why `name` is not a valid interface name, as a short phrase, or undefined when it is valid. */
export function checkDevName(name: string, opts: DevNameOptions = {}): string | undefined {
  if (typeof name !== 'string') return 'must be a string';
  if (name === '') return 'must not be empty';
  const bytes = Buffer.from(name, 'utf8');
  // Lone surrogates would be sent as U+FFFD, a different name from the one asked for.
  if (bytes.toString('utf8') !== name) return 'must be valid Unicode text';
  if (bytes.includes(0)) return 'must not contain a NUL character';
  if (bytes.length >= IFNAMSIZ) return `is ${bytes.length} bytes; at most ${IFNAMSIZ - 1} are allowed`;
  if (name === '.' || name === '..') return 'must not be . or ..';
  for (const b of bytes) {
    if (b === 0x2f) return "must not contain '/'";
    if (b === 0x3a) return "must not contain ':'";
    if (b === 0xa0) return 'must not contain byte 0xa0 (the kernel takes it for a space)';
    if (KERNEL_SPACE.has(b)) return 'must not contain whitespace';
  }
  const percent = name.indexOf('%');
  if (percent >= 0) {
    if (opts.template === false) return "must not contain '%'";
    if (percent !== name.length - 2 || !name.endsWith('%d')) {
      return "may contain '%' only in a single '%d' at the end";
    }
  }
  return undefined;
}

export function isValidDevName(name: string, opts: DevNameOptions = {}): boolean {
  return checkDevName(name, opts) === undefined;
}

/** True for a name that asks the kernel to pick a free number, e.g. `eth%d`. */
export function isDevNameTemplate(name: string): boolean {
  return name.endsWith('%d');
}
