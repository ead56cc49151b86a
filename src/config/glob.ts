// Globs, as the policy and `cdi generate --include` take them: `*` any run of characters, `?` one
// character, `[...]` one character of a set (`[a-z]`, `[!0-9]` or `[^0-9]`; `]` first in the set
// is literal), `\` quotes the next character. Characters are Unicode code points. Matching is
// linear-backtracking, never exponential.

/** Longest glob accepted, in characters; device names have at most 15 bytes. */
const MAX_GLOB_LENGTH = 256;

type Token =
  | { t: 'char'; c: string }
  | { t: 'any' }
  | { t: 'star' }
  | { t: 'set'; negate: boolean; ranges: [string, string][] };

export interface Glob {
  readonly pattern: string;
  matches(name: string): boolean;
}

/** Why `pattern` is not a valid glob, or undefined. */
export function checkGlob(pattern: string): string | undefined {
  try {
    parseGlob(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Compiles a glob; throws an Error whose message says what is wrong with it. */
export function compileGlob(pattern: string): Glob {
  const tokens = parseGlob(pattern);
  return { pattern, matches: (name: string) => matchTokens(tokens, Array.from(name)) };
}

function parseGlob(pattern: string): Token[] {
  if (typeof pattern !== 'string') throw new Error('must be a string');
  const cs = Array.from(pattern);
  if (cs.length === 0) throw new Error('must not be empty');
  if (cs.length > MAX_GLOB_LENGTH) throw new Error(`must be at most ${MAX_GLOB_LENGTH} characters`);
  const tokens: Token[] = [];
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i];
    if (c === '\\') {
      if (i + 1 >= cs.length) throw new Error("ends in a lone '\\'");
      tokens.push({ t: 'char', c: cs[++i] });
    } else if (c === '*') {
      if (tokens.at(-1)?.t !== 'star') tokens.push({ t: 'star' });
    } else if (c === '?') {
      tokens.push({ t: 'any' });
    } else if (c === '[') {
      let j = i + 1;
      const negate = cs[j] === '!' || cs[j] === '^';
      if (negate) j++;
      const ranges: [string, string][] = [];
      let first = true;
      for (;;) {
        if (j >= cs.length) throw new Error(`has an unterminated '[' at character ${i + 1}`);
        let lo = cs[j];
        if (lo === ']' && !first) break;
        first = false;
        if (lo === '\\') {
          if (++j >= cs.length) throw new Error(`has an unterminated '[' at character ${i + 1}`);
          lo = cs[j];
        }
        let hi = lo;
        if (cs[j + 1] === '-' && j + 2 < cs.length && cs[j + 2] !== ']') {
          j += 2;
          hi = cs[j];
          if (hi === '\\') {
            if (++j >= cs.length) throw new Error(`has an unterminated '[' at character ${i + 1}`);
            hi = cs[j];
          }
          if (hi.codePointAt(0)! < lo.codePointAt(0)!) throw new Error(`has a reversed range ${lo}-${hi}`);
        }
        ranges.push([lo, hi]);
        j++;
      }
      tokens.push({ t: 'set', negate, ranges });
      i = j;
    } else {
      tokens.push({ t: 'char', c });
    }
  }
  return tokens;
}

function matchOne(tok: Token, c: string): boolean {
  switch (tok.t) {
    case 'char':
      return tok.c === c;
    case 'any':
      return true;
    case 'set': {
      const cp = c.codePointAt(0)!;
      const hit = tok.ranges.some(([lo, hi]) => cp >= lo.codePointAt(0)! && cp <= hi.codePointAt(0)!);
      return hit !== tok.negate;
    }
    default:
      return false;
  }
}

/** Classic wildcard matching: on a mismatch, let the last `*` take one more character. */
function matchTokens(tokens: Token[], cs: string[]): boolean {
  let p = 0;
  let s = 0;
  let starP = -1;
  let starS = 0;
  while (s < cs.length) {
    if (p < tokens.length && tokens[p].t === 'star') {
      starP = p++;
      starS = s;
    } else if (p < tokens.length && matchOne(tokens[p], cs[s])) {
      p++;
      s++;
    } else if (starP >= 0) {
      p = starP + 1;
      s = ++starS;
    } else {
      return false;
    }
  }
  while (p < tokens.length && tokens[p].t === 'star') p++;
  return p === tokens.length;
}
