// JSON.parse with a syntax error of our own. The engine's own messages differ between V8 (the
// Node launcher) and JavaScriptCore (the single executable) for the same text, and the two builds
// must print the same line; so on a syntax error a scan of ours (RFC 8259) says where and what.

/** JSON.parse; a syntax error says "unexpected ... at line L, column C" on every engine. */
export function parseJsonText(source: string): unknown {
  try {
    return JSON.parse(source) as unknown;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new SyntaxError(jsonSyntaxError(source), { cause: err });
  }
}

type Expect = 'value' | 'value or ]' | 'key' | 'key or }' | 'colon' | 'after';

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WHITESPACE = /[ \t\n\r]*/y;

/** The first place where `source` stops being JSON, as a one-line message. */
export function jsonSyntaxError(source: string): string {
  let i = 0;
  const closers: string[] = [];
  const at = (): string => {
    const before = source.slice(0, i).split('\n');
    const where = `at line ${before.length}, column ${before[before.length - 1].length + 1}`;
    return i < source.length ? `unexpected character ${JSON.stringify(source[i])} ${where}` : `unexpected end of text ${where}`;
  };
  /** Past a string at i; false with i at the character that breaks it. */
  const string = (): boolean => {
    for (i++; i < source.length; i++) {
      const c = source[i];
      if (c === '"') {
        i++;
        return true;
      }
      if (c < ' ') return false;
      if (c === '\\') {
        i++;
        if (source[i] === 'u') {
          for (let k = 0; k < 4; k++) if (!/[0-9a-fA-F]/.test(source[++i] ?? '')) return false;
        } else if (!'"\\/bfnrt'.includes(source[i] ?? 'x')) {
          return false;
        }
      }
    }
    return false;
  };
  /** Past a number or literal at i; false with i at the character that breaks it. */
  const scalar = (): boolean => {
    const word = ['true', 'false', 'null'].find((w) => w[0] === source[i]);
    if (word) {
      let k = 0;
      while (k < word.length && source[i + k] === word[k]) k++;
      i += k;
      return k === word.length;
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(source);
    if (m) i += m[0].length;
    return m !== null;
  };

  let expect: Expect = 'value';
  for (;;) {
    WHITESPACE.lastIndex = i;
    WHITESPACE.exec(source);
    i = WHITESPACE.lastIndex;
    if (i >= source.length) return expect === 'after' && !closers.length ? 'not valid JSON' : at();
    const c = source[i];
    if (expect === 'value' || expect === 'value or ]') {
      if (c === ']' && expect === 'value or ]') {
        closers.pop();
        i++;
        expect = 'after';
      } else if (c === '{' || c === '[') {
        closers.push(c === '{' ? '}' : ']');
        i++;
        expect = c === '{' ? 'key or }' : 'value or ]';
      } else if (c === '"' ? string() : scalar()) {
        expect = 'after';
      } else {
        return at();
      }
    } else if (expect === 'key' || expect === 'key or }') {
      if (c === '}' && expect === 'key or }') {
        closers.pop();
        i++;
        expect = 'after';
      } else if (c === '"' && string()) {
        expect = 'colon';
      } else {
        return at();
      }
    } else if (expect === 'colon') {
      if (c !== ':') return at();
      i++;
      expect = 'value';
    } else if (closers.length && c === ',') {
      i++;
      expect = closers[closers.length - 1] === '}' ? 'key' : 'value';
    } else if (closers.length && c === closers[closers.length - 1]) {
      closers.pop();
      i++;
    } else {
      return at();
    }
  }
}
