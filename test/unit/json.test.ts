// parseJsonText: JSON.parse's values, and syntax errors in words of our own, the same under V8 and
// JavaScriptCore (the single executable prints the launcher's lines: integration/executable.test.ts).
import t from 'tap';
import { jsonSyntaxError, parseJsonText } from '../../src/schema/json';

t.test('valid JSON parses as JSON.parse parses it', async (t) => {
  for (const text of ['0', '-1.5e+3', '"a\\u00e9\\n"', 'true', ' null ', '[]', '{}', '[1, [2, {"a": [false]}], "x"]', '{"a": {"b": [1, 2]}, "c": "d"}']) {
    t.same(parseJsonText(text), JSON.parse(text), text);
  }
});

t.test('a syntax error says where and what, on one line', async (t) => {
  const cases: [string, string][] = [
    ['', 'unexpected end of text at line 1, column 1'],
    ['{', 'unexpected end of text at line 1, column 2'],
    ['x', 'unexpected character "x" at line 1, column 1'],
    ['{"a": 1,\n "b" 2}', 'unexpected character "2" at line 2, column 6'],
    ['{"a": 1,}', 'unexpected character "}" at line 1, column 9'],
    ['[1, 2,]', 'unexpected character "]" at line 1, column 7'],
    ['[1 2]', 'unexpected character "2" at line 1, column 4'],
    ['{"a": tru}', 'unexpected character "}" at line 1, column 10'],
    ['{"a": nul', 'unexpected end of text at line 1, column 10'],
    ['{a: 1}', 'unexpected character "a" at line 1, column 2'],
    ["{'a': 1}", 'unexpected character "\'" at line 1, column 2'],
    ['"a\tb"', 'unexpected character "\\t" at line 1, column 3'],
    ['"\\x"', 'unexpected character "x" at line 1, column 3'],
    ['"\\u12g4"', 'unexpected character "g" at line 1, column 6'],
    ['"abc', 'unexpected end of text at line 1, column 5'],
    ['01', 'unexpected character "1" at line 1, column 2'],
    ['-x', 'unexpected character "-" at line 1, column 1'],
    ['{} {}', 'unexpected character "{" at line 1, column 4'],
    ['[1]]', 'unexpected character "]" at line 1, column 4'],
    ['{"a": 1]', 'unexpected character "]" at line 1, column 8'],
    ['['.repeat(100_000), 'unexpected end of text at line 1, column 100001'],
  ];
  for (const [text, message] of cases) {
    t.throws(() => JSON.parse(text), SyntaxError, `JSON.parse refuses ${JSON.stringify(text.slice(0, 20))}`);
    t.throws(() => parseJsonText(text), { constructor: SyntaxError, message }, message);
  }
});

t.test('text that JSON.parse takes has no syntax error to report', async (t) => {
  t.equal(jsonSyntaxError('{"a": [1, 2]}'), 'not valid JSON');
});
