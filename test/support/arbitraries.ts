/**
 * fast-check arbitraries for test/fuzz.test.ts: hostile HTTP requests for every route of the
 * gateway. Malformed, oversized, deeply nested, wrongly typed and unicode-heavy bodies, odd
 * headers and paths, wrong methods, and raw bytes that are not even HTTP.
 *
 * Every provider a generated request can name is supplied by the caller (`FuzzCatalog`), and
 * the fuzz test points all of them at loopback: nothing generated here can leave 127.0.0.1.
 */
import fc from 'fast-check';

/** One request sent through an HTTP client (undici): always valid enough HTTP for the client to send. */
export interface FuzzRequest {
  /** Which generator made it (for failure reports and per-family counts). */
  family: string;
  method: string;
  /** Request target: path and query, bytes 0x21–0xFF only (what undici sends as is). */
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  /** Send the body with `transfer-encoding: chunked` (no content-length), in these many pieces. */
  chunks?: number;
  /** When the input alone decides the status: the response's status must be one of these. */
  expect?: readonly number[];
}

/** Bytes written straight to a TCP socket: request lines and headers an HTTP client refuses to send. */
export interface RawRequest {
  family: 'raw-http';
  description: string;
  bytes: Uint8Array;
}

/** What the generators may name: all of it served on loopback by the fuzz test's gateway. */
export interface FuzzCatalog {
  /** Every provider id in the registry (built-in ones pointed at closed local ports, the fake, Local). */
  providerIds: readonly string[];
  /** Model ids and aliases from GET /v1/models. */
  modelIds: readonly string[];
  /** The name of an image present in the gateway's image store (GET /images/<name> is a 200). */
  imageName: string;
  /** INTERFERENCE_MAX_BODY_BYTES of the gateway. */
  maxBodyBytes: number;
}

// ---------------------------------------------------------------------------------------------
// Strings

/** Pieces that break naive string handling: emoji sequences, RTL, combining marks, lone surrogates, separators. */
const nastyPieces: readonly string[] = [
  '😀',
  '👨‍👩‍👧‍👦',
  '🏳️‍🌈',
  '🇺🇳',
  '\u202Eevil\u202C',
  '\u200F\u200E',
  'مرحبا بالعالم',
  'שָׁלוֹם',
  'e\u0301\u0301\u0301\u0301',
  'Z̷̢͎̈́a̵͍͝l̶̰̒g̴̱̈́o̶͙͐',
  '\u0000',
  '\uFEFF',
  '\uD800',
  '\uDFFF',
  '\uDC00\uD800',
  '\uDBFF\uDFFF',
  '\u2028',
  '\u2029',
  '\u200B',
  '\uFFFD',
  '\uFFFF',
  '\uFFFE',
  '𝕳𝖊𝖑𝖑𝖔',
  '\uFDFA',
  '中文字符',
  '日本語テキスト',
  '\u0085',
  '\u00A0',
  '\u3000',
  '\t',
  '\n',
  '\r\n',
  '\\',
  '"',
  "'",
  '%',
  '%00',
  '%zz',
  '../',
  '..\\',
  '/',
  'null',
  'undefined',
  'NaN',
  '__proto__',
  'constructor',
  'toString',
  '{{7*7}}',
  '${7*7}',
  '<script>alert(1)</script>',
  "'; DROP TABLE x; --",
  '\x7F',
  '\x01\x02\x1B[31m',
  'ÿþ',
  ' ',
  '',
];

export const nastyPiece: fc.Arbitrary<string> = fc.constantFrom(...nastyPieces);

/** Unicode-heavy text: nasty pieces, arbitrary code points (lone surrogates included) and graphemes. */
export function unicodeText(maxPieces = 10): fc.Arbitrary<string> {
  return fc
    .array(
      fc.oneof(
        { weight: 3, arbitrary: nastyPiece },
        { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
        { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
        { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
      ),
      { maxLength: maxPieces },
    )
    .map((pieces) => pieces.join(''));
}

/** Long strings: repeated characters and repeated nasty pieces, up to `max` UTF-16 units. */
export function longText(max: number): fc.Arbitrary<string> {
  return fc
    .tuple(fc.oneof(fc.constantFrom('x', 'a b ', 'é', '😀', '\u0301', '\uD800', '%', ' ', 'Fake '), nastyPiece), fc.integer({ min: 64, max }))
    .map(([piece, length]) => (piece.length === 0 ? 'y'.repeat(length) : piece.repeat(Math.max(1, Math.floor(length / piece.length)))));
}

/** Any JS string a client might put in a field. */
export const junkString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: unicodeText() },
  { weight: 2, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: longText(3000) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '   ', 'true', 'false', '0', '-1', '1e999', 'NaN', 'Infinity', '[]', '{}', 'null') },
);

/** Latin-1 text as an HTTP header value may carry it (tab, visible ASCII, obs-text 0x80–0xFF). */
export function headerText(maxLength: number): fc.Arbitrary<string> {
  const char = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    { weight: 2, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
    { weight: 1, arbitrary: fc.constant(0x09) },
  );
  return fc.array(char, { maxLength }).map((codes) => String.fromCharCode(...codes));
}

// ---------------------------------------------------------------------------------------------
// JSON values, with raw tokens JSON.stringify cannot write (1e999, -0, escaped lone surrogates)

/** A piece of JSON text inserted verbatim by `serialize`. */
export class RawJson {
  constructor(readonly text: string) {}
}

/** Valid JSON number and string tokens that parse to surprising values. */
const rawValidTokens: readonly string[] = [
  '1e999', // Infinity
  '-1e999', // -Infinity
  '1e-999', // 0
  '-0',
  '0.0000000000000000000000001',
  '123456789012345678901234567890',
  '9007199254740993',
  '1.7976931348623157e308',
  '5e-324',
  '1.0',
  '2.0000000000000001',
  '"\\uD800"',
  '"\\uDFFF\\uD800"',
  '"\\ud83d"',
  '"x\\uD800y\\uDBFFz"',
  '"\\u0000"',
  '"\\u202E\\u0000\\uFEFF"',
  '"\\/\\b\\f\\n\\r\\t"',
];

/** Tokens that make the whole body invalid JSON. */
const rawInvalidTokens: readonly string[] = [
  'NaN',
  'Infinity',
  '-Infinity',
  'undefined',
  '0x10',
  '01',
  '.5',
  '1.',
  '+1',
  "'single'",
  '"unterminated',
  '"\\x41"',
  '"\\u12"',
  'tru',
  'nul',
  '[1,]',
  '{"a":1,}',
  '"\t"',
];

export const rawToken: fc.Arbitrary<RawJson> = fc.constantFrom(...rawValidTokens).map((text) => new RawJson(text));
const rawInvalidToken: fc.Arbitrary<RawJson> = fc.constantFrom(...rawInvalidTokens).map((text) => new RawJson(text));

/** JSON.stringify, with `RawJson` values written verbatim. */
export function serialize(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_key, item: unknown) => {
    if (item instanceof RawJson) {
      raws.push(item.text);
      return `@@RAW${raws.length - 1}@@`;
    }
    return item;
  });
  if (raws.length === 0) return text;
  return text.replace(/"@@RAW(\d+)@@"/g, (_match, index: string) => raws[Number(index)] ?? 'null');
}

/** Arbitrary JSON (unicode keys and strings included), some raw tokens, some big or odd numbers. */
export const junkValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' }) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 2, arbitrary: junkString },
  { weight: 2, arbitrary: rawToken },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constantFrom(0, -1, 1.5, 2 ** 31, 2 ** 53, -(2 ** 53), Number.MAX_VALUE, Number.MIN_VALUE, 1e21, 129, 11),
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], [[]], [{}], '') },
);

/** Nested arrays/objects `depth` levels deep around `leaf`, as text (no recursion anywhere). */
export function deepJson(depth: number, shape: 'array' | 'object' | 'mixed', leaf = '1'): string {
  if (shape === 'array') return `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`;
  if (shape === 'object') return `${'{"a":'.repeat(depth)}${leaf}${'}'.repeat(depth)}`;
  const open: string[] = [];
  const close: string[] = [];
  for (let i = 0; i < depth; i++) {
    if (i % 2 === 0) {
      open.push('[');
      close.push(']');
    } else {
      open.push('{"k":');
      close.push('}');
    }
  }
  return `${open.join('')}${leaf}${close.reverse().join('')}`;
}

// ---------------------------------------------------------------------------------------------
// The provider, api_key and message fields

/** Provider fields that name only what the catalog holds (all on loopback), in every accepted form. */
export function safeProvider(catalog: FuzzCatalog): fc.Arbitrary<unknown> {
  const id = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('Fake', 'Local') },
    { weight: 2, arbitrary: fc.constantFrom(...catalog.providerIds) },
    { weight: 1, arbitrary: fc.constantFrom('fake', 'FAKE', 'local', ' Fake ', 'Fake,Local', 'Local\tFake') },
  );
  return fc.oneof(
    { weight: 5, arbitrary: id },
    { weight: 2, arbitrary: fc.array(id, { minLength: 1, maxLength: 3 }).map((ids) => ids.join(' ')) },
    { weight: 1, arbitrary: fc.array(id, { minLength: 1, maxLength: 3 }) },
    { weight: 1, arbitrary: fc.record({ order: fc.array(id, { maxLength: 3 }), allow_fallbacks: fc.boolean() }, { requiredKeys: ['order'] }) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

const idSeparator = fc.constantFrom(' ', ',', ', ', '\t', '\n', '  ', '\u00A0', '\u3000', ',,', ' , ', '\u2028', '\u0085', ';', '|', '+');

/** `provider` fields of every wrong kind: junk ids, unicode, numbers, arrays of numbers, objects with junk. */
export function junkProvider(catalog: FuzzCatalog): fc.Arbitrary<unknown> {
  const realId = fc.constantFrom(...catalog.providerIds);
  const someId = fc.oneof(realId, junkString, fc.constantFrom('Fake', 'Local', 'NoSuchProvider', 'Grok', 'huggingspace', 'Local_', 'FakeFake'));
  const idList = fc.array(fc.oneof(someId, junkValue), { maxLength: 5 });
  return fc.oneof(
    { weight: 3, arbitrary: junkString },
    { weight: 3, arbitrary: fc.tuple(fc.array(someId, { minLength: 1, maxLength: 6 }), idSeparator).map(([ids, separator]) => ids.join(separator)) },
    { weight: 1, arbitrary: longText(20_000) },
    // A known id, then hundreds or thousands of unknown ones (all named back in a response header).
    {
      weight: 1,
      arbitrary: fc.tuple(fc.constantFrom('Fake', 'Local'), fc.integer({ min: 100, max: 6000 })).map(([id, count]) => `${id} ${'zz '.repeat(count)}`),
    },
    { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), rawToken) },
    { weight: 2, arbitrary: fc.array(fc.integer(), { maxLength: 5 }) },
    { weight: 2, arbitrary: idList },
    { weight: 1, arbitrary: fc.array(someId, { maxLength: 5 }) },
    {
      weight: 3,
      arbitrary: fc.record(
        {
          order: fc.oneof(idList, fc.array(someId, { maxLength: 4 }), junkValue),
          only: fc.oneof(idList, fc.array(someId, { maxLength: 4 }), junkValue),
          ignore: fc.oneof(idList, fc.array(someId, { maxLength: 4 }), junkValue),
          allow_fallbacks: fc.oneof(fc.boolean(), junkValue),
          sort: junkValue,
          [`__proto__`]: junkValue,
        },
        { requiredKeys: [] },
      ),
    },
    { weight: 1, arbitrary: fc.dictionary(junkString, junkValue, { maxKeys: 4 }) },
  );
}

/** `api_key` of every kind: strings, numbers, objects keyed by (real or junk) provider ids with junk values. */
export function junkApiKey(catalog: FuzzCatalog): fc.Arbitrary<unknown> {
  const key = fc.oneof(fc.constantFrom(...catalog.providerIds), junkString, fc.constantFrom('__proto__', 'constructor', 'Fake', 'Local'));
  return fc.oneof(
    { weight: 2, arbitrary: junkString },
    { weight: 2, arbitrary: fc.dictionary(key, fc.oneof(junkString, junkValue), { maxKeys: 4 }) },
    { weight: 1, arbitrary: fc.dictionary(key, junkString, { maxKeys: 3 }) },
    { weight: 1, arbitrary: junkValue },
    { weight: 1, arbitrary: fc.constantFrom('', null, 0, [], {}, ['sk-x'], { Fake: { nested: 'x' } }, { Fake: 1 }) },
  );
}

const roles = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;

/** Messages the validator accepts, short enough for the embedded model's 512-token context. */
export const validMessages: fc.Arbitrary<unknown[]> = fc.array(
  fc.record({
    role: fc.constantFrom('user', 'user', 'system', 'assistant', 'developer'),
    content: fc.oneof(fc.constantFrom('Hello', 'Say hi', 'Once upon a time'), unicodeText(4), fc.string({ maxLength: 30 })),
  }),
  { minLength: 1, maxLength: 3 },
);

/** Content parts that are odd or wrong: unknown types, junk payloads, not objects. */
const weirdContentPart: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ type: fc.constant('text'), text: fc.oneof(junkString, junkValue) }),
  fc.record({
    type: fc.constant('image_url'),
    image_url: fc.oneof(
      junkValue,
      fc.record({
        url: fc.oneof(junkString, fc.constantFrom('data:image/png;base64,', 'data:,', 'http://127.0.0.1:1/x.png', 'javascript:alert(1)', 'file:///etc/passwd')),
      }),
    ),
  }),
  fc.record({ type: fc.constant('input_audio'), input_audio: junkValue }),
  fc.record({ type: fc.constant('file'), file: junkValue }),
  fc.record({ type: junkString, text: junkString }),
  fc.record({ type: fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.string())) }),
  fc.record({ text: junkString }),
  junkValue,
);

/** The `messages` field with something wrong in it (or, sometimes, odd but valid). */
export const junkMessages: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 2, arbitrary: junkValue },
  { weight: 1, arbitrary: fc.constantFrom([], [null], [[]], [{}], '[]', 0, {}, { role: 'user', content: 'x' }) },
  { weight: 2, arbitrary: fc.array(junkValue, { minLength: 1, maxLength: 4 }) },
  {
    weight: 3,
    arbitrary: fc.array(
      fc.record(
        {
          role: fc.oneof(fc.constantFrom(...roles), junkString, junkValue, fc.constantFrom('USER', 'User', ' user', 'user ', 'wizard', 'model', 'bot')),
          content: fc.oneof(junkString, junkValue, fc.array(weirdContentPart, { maxLength: 4 })),
          name: junkValue,
          tool_calls: junkValue,
          tool_call_id: junkValue,
        },
        { requiredKeys: [] },
      ),
      { minLength: 1, maxLength: 4 },
    ),
  },
  {
    weight: 2,
    arbitrary: fc.array(
      fc.record({ role: fc.constantFrom('user', 'assistant', 'system'), content: fc.array(weirdContentPart, { minLength: 1, maxLength: 4 }) }),
      { minLength: 1, maxLength: 3 },
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 100, max: 1500 })
      .map((count) => Array.from({ length: count }, (_, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content: 'x' }))),
  },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 3000 }).map((count) => Array.from({ length: count }, () => ({}))) },
);

// ---------------------------------------------------------------------------------------------
// Headers

const contentTypes = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'application/json;charset=latin1',
  'text/plain',
  'text/event-stream',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----x',
  'application/octet-stream',
  'application/xml',
  '',
  '*/*',
  'application/json, text/plain',
  'APPLICATION/JSON',
];

/** Odd headers, always below Node's 16 KiB header limit (undici refuses CR, LF and NUL itself). */
export const oddHeaders: fc.Arbitrary<Record<string, string>> = fc
  .record(
    {
      'content-type': fc.oneof(fc.constantFrom(...contentTypes), headerText(60)),
      'x-request-id': fc.oneof(
        fc.constantFrom('abc', 'a'.repeat(128), 'a'.repeat(129), '', ' ', 'id with spaces', '../../etc', '<script>', 'ÿÿÿ', '\t', 'x'.repeat(4000)),
        headerText(200),
      ),
      authorization: fc.oneof(
        fc.constantFrom('Bearer', 'Bearer ', 'Bearer sk-fake', 'bearer x', 'Basic Zm9vOmJhcg==', 'Bearer a b c', 'Token x', 'Bearer \t ', 'Digest junk'),
        headerText(300).map((text) => `Bearer ${text}`),
        headerText(8000),
      ),
      'x-api-key': headerText(200),
      accept: fc.oneof(fc.constantFrom('text/event-stream', 'application/json', '*/*', 'image/*', 'text/html', ''), headerText(80)),
      'accept-encoding': fc.constantFrom('gzip', 'br', 'deflate', 'identity', '*', 'gzip;q=0, *;q=0', 'zstd'),
      'if-none-match': fc.oneof(fc.constantFrom('*', '"x"', 'W/"x"', '""'), headerText(100)),
      'x-forwarded-proto': fc.constantFrom('https', 'http', 'ftp', 'https, http', ''),
      'x-forwarded-for': headerText(100),
      // Foreign pages (403 before any work) and allowed loopback pages (served as usual).
      origin: fc.constantFrom('null', 'http://evil.example', 'file://', 'http://localhost:3000', 'http://127.0.0.1:8080'),
      'access-control-request-headers': headerText(300),
      'access-control-request-method': fc.constantFrom('POST', 'GET', 'DELETE', 'X'),
      cookie: headerText(500),
      'user-agent': headerText(200),
      range: fc.constantFrom('bytes=0-1', 'bytes=-1', 'bytes=99999-', 'junk'),
      'x-junk': fc.oneof(
        headerText(100),
        fc.integer({ min: 1000, max: 12_000 }).map((length) => 'j'.repeat(length)),
      ),
    },
    { requiredKeys: [] },
  )
  .map((headers) => {
    // Keep the whole header block well below 16 KiB (Node's default limit for requests).
    const out: Record<string, string> = {};
    let total = 0;
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      if (total + name.length + value.length > 12_000) continue;
      total += name.length + value.length;
      out[name] = value;
    }
    return out;
  });

/** Mostly `content-type: application/json`; sometimes odd headers instead. */
export const jsonHeaders: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ 'content-type': 'application/json' }) },
  { weight: 1, arbitrary: fc.constant({}) },
  { weight: 2, arbitrary: oddHeaders },
);

// ---------------------------------------------------------------------------------------------
// Paths

/** UTF-8 percent-encoding of any string, lone surrogates included (as WTF-8 bytes, which are not valid UTF-8). */
export function percentEncode(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (/^[A-Za-z0-9_.~-]$/.test(char)) {
      out += char;
      continue;
    }
    const bytes: number[] = [];
    if (code < 0x80) bytes.push(code);
    else if (code < 0x800) bytes.push(0xc0 | (code >> 6), 0x80 | (code & 0x3f));
    else if (code < 0x10000) bytes.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
    else bytes.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 0x3f), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
    for (const byte of bytes) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Characters undici puts in a request target as they are (0x21–0xFF), minus `?` and `#`. */
const pathChar = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0x21, max: 0x7e }).filter((code) => code !== 0x3f && code !== 0x23) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
);

/** A path segment (an id) in every odd form: real ids, percent-encoded unicode, bad escapes, traversal, very long. */
export function pathId(real: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...real).map(percentEncode) },
    { weight: 1, arbitrary: fc.constantFrom(...real).map((id) => percentEncode(id.toUpperCase())) },
    { weight: 3, arbitrary: unicodeText(6).map(percentEncode) },
    { weight: 2, arbitrary: fc.array(pathChar, { maxLength: 30 }).map((codes) => String.fromCharCode(...codes)) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '%',
        '%2',
        '%zz',
        '%E0%A4',
        '%C0%AF',
        '%ED%A0%80',
        '%FF%FE',
        '%00',
        '%0A',
        '%2F',
        '%252F',
        '%25',
        '..',
        '.',
        '%2e%2e',
        '..%2F..%2Fetc%2Fpasswd',
        '..%5C..%5C',
        '....//',
        'a/b',
        'a//b',
        'HuggingFace/../Groq',
        '~',
        '*',
        '%20',
        '+',
        'Fake%20Local',
        'Local%2FFake',
        'Local%0D%0AX-Injected:%201',
        'Fake%F0%9F%98%80',
        'Fake%20%F0%9F%98%80',
        'Fake%20%01',
        '%F0%9F%98%80',
        'x'.repeat(300),
      ),
    },
    { weight: 1, arbitrary: fc.integer({ min: 1000, max: 9000 }).map((length) => 'i'.repeat(length)) },
    { weight: 1, arbitrary: fc.integer({ min: 200, max: 2000 }).map((length) => '%F0%9F%98%80'.repeat(Math.ceil(length / 12))) },
  );
}

/** A query string (with its `?`), or nothing. */
export function queryString(catalog: FuzzCatalog): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant('') },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '?',
        '??',
        '?&&',
        '?=',
        '?a',
        '?a=%zz',
        '?%',
        '?provider',
        '?provider=',
        '?provider=%',
        '#frag',
        '?x=1#frag',
        '?provider=Local&provider=Fake',
      ),
    },
    { weight: 2, arbitrary: pathId(catalog.providerIds).map((id) => `?provider=${id}`) },
    { weight: 1, arbitrary: fc.array(pathChar, { maxLength: 40 }).map((codes) => `?${String.fromCharCode(...codes)}`) },
    { weight: 1, arbitrary: fc.integer({ min: 500, max: 6000 }).map((length) => `?q=${'q'.repeat(length)}`) },
  );
}

/** Slash games on a path: doubled slashes, trailing slash, dot segments, case changes. */
function mangle(path: string): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constant(path) },
    { weight: 1, arbitrary: fc.constant(`${path}/`) },
    { weight: 1, arbitrary: fc.constant(`/${path}`) },
    { weight: 1, arbitrary: fc.constant(path.replace(/\//g, '//')) },
    { weight: 1, arbitrary: fc.constant(path.toUpperCase()) },
    { weight: 1, arbitrary: fc.constant(`/.${path}`) },
    { weight: 1, arbitrary: fc.constant(`/v1/..${path}`) },
    { weight: 1, arbitrary: fc.constant(path.replace(/\//g, '/./')) },
    { weight: 1, arbitrary: fc.constant(`/${path.slice(1).replace(/\//g, '%2F')}`) },
    { weight: 1, arbitrary: fc.constant(`${path}//`) },
  );
}

// ---------------------------------------------------------------------------------------------
// Request families

const chatFieldsJunk = (catalog: FuzzCatalog): Record<string, fc.Arbitrary<unknown>> => {
  const number = fc.oneof(
    junkValue,
    rawToken,
    fc.constantFrom('0.5', '1', 'NaN', '', 'hot', '1e999', '-0'),
    fc.double(),
    fc.constantFrom(-1, 2.0001, 3, 1e308, -1e308, 0, 2),
  );
  const integer = fc.oneof(
    junkValue,
    rawToken,
    fc.constantFrom('1', '2', '', 'many'),
    fc.constantFrom(0, -1, 1.5, 0.5, 129, 2 ** 53, 2 ** 53 + 2, -(2 ** 53) - 2, 1e21, 1e308),
    fc.integer(),
  );
  return {
    messages: junkMessages,
    model: fc.oneof(junkValue, junkString, fc.constantFrom(...catalog.modelIds), fc.constantFrom('', ' ', ' test-model ', 'TEST-MODEL', 'Fake/test-model')),
    provider: junkProvider(catalog),
    api_key: junkApiKey(catalog),
    stream: fc.oneof(junkValue, fc.constantFrom('true', 1, 0, 'false', 'yes', null)),
    stream_options: fc.oneof(junkValue, fc.record({ include_usage: junkValue }), fc.constant({ include_usage: true })),
    temperature: number,
    top_p: number,
    presence_penalty: number,
    frequency_penalty: number,
    max_tokens: integer,
    max_completion_tokens: integer,
    n: integer,
    seed: integer,
    top_logprobs: integer,
    logprobs: junkValue,
    parallel_tool_calls: junkValue,
    user: fc.oneof(junkValue, junkString),
    stop: fc.oneof(junkValue, fc.array(junkString, { maxLength: 20 }), fc.array(fc.oneof(junkString, junkValue), { maxLength: 4 })),
    tools: fc.oneof(
      junkValue,
      fc.array(junkValue, { maxLength: 3 }),
      fc.array(fc.record({ type: fc.constant('function'), function: junkValue }), { maxLength: 3 }),
    ),
    tool_choice: junkValue,
    response_format: fc.oneof(
      junkValue,
      fc.record({ type: fc.oneof(junkString, fc.constantFrom('json_object', 'json_schema', 'text')), json_schema: junkValue }),
    ),
    logit_bias: fc.oneof(junkValue, fc.dictionary(junkString, junkValue, { maxKeys: 3 })),
    metadata: junkValue,
    [`__proto__`]: fc.oneof(junkValue, fc.constant({ stream: true, provider: 'Local' })),
    constructor: junkValue,
    [`junk_${'x'.repeat(3)}`]: junkValue,
  };
};

/** Picks 1–3 distinct field names of `fields`. */
function pickFields(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<string[]> {
  return fc.uniqueArray(fc.constantFrom(...Object.keys(fields)), { minLength: 1, maxLength: 3 });
}

/** An object with some fields from `fields` generated (each key its own arbitrary). */
function mutatedFields(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Record<string, unknown>> {
  return pickFields(fields).chain((names) => {
    const chosen: Record<string, fc.Arbitrary<unknown>> = {};
    // defineProperty: a plain assignment of `__proto__` would set the prototype instead of a field.
    for (const name of names) Object.defineProperty(chosen, name, { value: fields[name], enumerable: true, writable: true, configurable: true });
    return fc.record(chosen);
  });
}

/** Puts `mutations` over `base`: own properties, `__proto__` included, set as data (JSON.parse does the same). */
function overlay(base: Record<string, unknown>, mutations: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(mutations)) Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

/** An almost valid chat body: valid messages, a loopback provider, small max_tokens; then 1–3 fields made wrong. */
export function chatBody(catalog: FuzzCatalog): fc.Arbitrary<Record<string, unknown>> {
  const base = fc.record(
    {
      model: fc.constantFrom('test-model', '', 'test-model', 'gpt-4o-mini', 'llama-3.3-70b', 'stories'),
      provider: safeProvider(catalog),
      messages: validMessages,
      max_tokens: fc.integer({ min: 1, max: 4 }),
      stream: fc.boolean(),
      stream_options: fc.record({ include_usage: fc.boolean() }),
      temperature: fc.double({ min: 0, max: 2, noNaN: true }),
    },
    { requiredKeys: ['messages', 'max_tokens', 'model'] },
  );
  return fc
    .tuple(base, fc.oneof({ weight: 1, arbitrary: fc.constant({}) }, { weight: 6, arbitrary: mutatedFields(chatFieldsJunk(catalog)) }))
    .map(([body, mutations]) => overlay(body, mutations));
}

const imageFieldsJunk = (catalog: FuzzCatalog): Record<string, fc.Arbitrary<unknown>> => ({
  prompt: fc.oneof(
    junkValue,
    junkString,
    fc.constantFrom('', ' ', '\n\t', '\u3000'),
    fc.integer({ min: 31_990, max: 32_010 }).map((length) => 'p'.repeat(length)),
  ),
  model: fc.oneof(junkValue, junkString, fc.constantFrom(...catalog.modelIds)),
  provider: junkProvider(catalog),
  api_key: junkApiKey(catalog),
  n: fc.oneof(junkValue, rawToken, fc.constantFrom(0, -1, 1.5, 10, 11, 1e9, '2', '', 1e999)),
  size: fc.oneof(
    junkValue,
    junkString,
    fc.constantFrom(
      '1024',
      '1024x',
      'x1024',
      '63x64',
      '64x64',
      '4096x4096',
      '4097x4097',
      '1024X1024',
      '1024×1024',
      '１０２４x１０２４',
      '99999x99999',
      '00064x00064',
      '0064x0064',
      'autox',
      'AUTO',
      'auto',
      ' 1024x1024',
      '1024x1024 ',
      '-64x-64',
      '1e3x1e3',
      '1024x1024x1024',
    ),
    fc.tuple(fc.integer({ min: -10, max: 100_000 }), fc.integer({ min: -10, max: 100_000 })).map(([w, h]) => `${w}x${h}`),
  ),
  response_format: fc.oneof(junkValue, fc.constantFrom('URL', 'b64', 'b64_json ', 'json', '', 'url\u0000')),
  seed: fc.oneof(junkValue, rawToken, fc.constantFrom(-1, 2 ** 31, 2 ** 31 - 1, 1.5, '42', 1e999, 0)),
  negative_prompt: fc.oneof(junkValue, junkString),
  quality: junkValue,
  style: junkValue,
  background: junkValue,
  output_format: junkValue,
  user: junkValue,
  image: junkValue,
  [`__proto__`]: fc.oneof(junkValue, fc.constant({ prompt: 'x' })),
});

/** An almost valid images body (loopback providers only), then 1–3 fields made wrong. */
export function imagesBody(catalog: FuzzCatalog): fc.Arbitrary<Record<string, unknown>> {
  const base = fc.record(
    {
      prompt: fc.oneof(
        fc.constantFrom('a white siamese cat', 'x'),
        unicodeText(4).filter((text) => text.trim() !== ''),
      ),
      model: fc.constantFrom('flux', '', 'dall-e-3', 'gpt-image-1', 'sd-3.5', 'flux-dev', 'turbo', 'test-model'),
      provider: safeProvider(catalog),
      n: fc.integer({ min: 1, max: 2 }),
      size: fc.constantFrom('1024x1024', '512x512', 'auto'),
      response_format: fc.constantFrom('url', 'b64_json'),
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      negative_prompt: fc.constantFrom('blurry', ''),
    },
    { requiredKeys: ['prompt'] },
  );
  return fc
    .tuple(base, fc.oneof({ weight: 1, arbitrary: fc.constant({}) }, { weight: 6, arbitrary: mutatedFields(imageFieldsJunk(catalog)) }))
    .map(([body, mutations]) => overlay(body, mutations));
}

const chatRoutes = ['/v1/chat/completions', '/v1/chat/completions/'] as const;
const imageRoutes = ['/v1/images/generate', '/v1/images/generations'] as const;

/** POST /api/{provider}/chat/completions with a provider segment that is odd, or that is one of ours. */
function scopedChatPath(catalog: FuzzCatalog): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.oneof({ weight: 3, arbitrary: fc.constantFrom('Fake', 'Local', 'fake', 'Fake%20Local') }, { weight: 2, arbitrary: pathId(catalog.providerIds) }),
      fc.constantFrom('/chat/completions', '/v1/chat/completions', '/chat/completions/', '/chat', '/completions', ''),
    )
    .map(([id, rest]) => `/api/${id}${rest}`);
}

function withQuery(catalog: FuzzCatalog, path: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(path, fc.oneof({ weight: 5, arbitrary: fc.constant('') }, { weight: 1, arbitrary: queryString(catalog) })).map(([p, q]) => p + q);
}

/** Chat bodies (almost valid, one to three fields wrong) to the chat routes. */
export function chatRequests(catalog: FuzzCatalog): fc.Arbitrary<FuzzRequest> {
  const path = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...chatRoutes) }, { weight: 2, arbitrary: scopedChatPath(catalog) });
  return fc.record({ path: withQuery(catalog, path), body: chatBody(catalog), headers: jsonHeaders }).map(({ path: p, body, headers }) => ({
    family: 'chat',
    method: 'POST',
    path: p,
    headers,
    body: serialize(body),
  }));
}

/** Images bodies to both images routes. */
export function imageRequests(catalog: FuzzCatalog): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({ path: withQuery(catalog, fc.constantFrom(...imageRoutes)), body: imagesBody(catalog), headers: jsonHeaders })
    .map(({ path: p, body, headers }) => ({
      family: 'images',
      method: 'POST',
      path: p,
      headers,
      body: serialize(body),
    }));
}

const postRoutes = [
  '/v1/chat/completions',
  '/v1/images/generate',
  '/v1/images/generations',
  '/api/Fake/chat/completions',
  '/api/Local/v1/chat/completions',
] as const;

/** What the server makes of a body: UTF-8 decoded (bad bytes become U+FFFD), then JSON.parse; undefined when that fails. */
function parsed(body: string | Uint8Array): { value: unknown } | undefined {
  const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

/** How deeply a JSON value nests (a scalar is 0, `[]` is 1). Iterative. */
export function nesting(root: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop() as [unknown, number];
    if (typeof item !== 'object' || item === null) continue;
    deepest = Math.max(deepest, depth);
    for (const child of Array.isArray(item) ? item : Object.values(item)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** Deeper than any real request: the gateway refuses such bodies with a 400 (its limit is 64 levels today). */
const absurdNesting = 1000;

/** A valid chat body as text, to be broken at the text level. */
const validChatText = fc
  .record({ provider: fc.constantFrom('Fake', 'Local'), messages: validMessages, max_tokens: fc.integer({ min: 1, max: 3 }), stream: fc.boolean() })
  .map((body) => serialize({ model: body.provider === 'Fake' ? 'test-model' : '', ...body }));

/** Bodies that are not a JSON object, not JSON, not UTF-8, or JSON nested thousands deep. */
export function rawBodyRequests(catalog: FuzzCatalog): fc.Arbitrary<FuzzRequest> {
  const deepShape = fc.constantFrom('array', 'object', 'mixed') as fc.Arbitrary<'array' | 'object' | 'mixed'>;
  const depth = fc.oneof(fc.integer({ min: 100, max: 2000 }), fc.integer({ min: 2000, max: 12_000 }));
  const body: fc.Arbitrary<string | Uint8Array> = fc.oneof(
    // Any JSON value at all (most are not objects).
    { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 6, stringUnit: 'binary' }).map((value) => serialize(value)) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((value) => serialize(value)) },
    // Random bytes: invalid UTF-8, NUL bytes, anything.
    { weight: 3, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 2000 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 16, min: 0, max: 4 }) },
    // Text that is almost JSON.
    { weight: 2, arbitrary: fc.tuple(validChatText, fc.nat()).map(([text, cut]) => text.slice(0, cut % Math.max(1, text.length))) },
    { weight: 1, arbitrary: validChatText.map((text) => `\uFEFF${text}`) },
    { weight: 1, arbitrary: fc.tuple(validChatText, fc.constantFrom('x', '}', ',', '\u0000', ' {}', '[]', '\n\n{}')).map(([text, tail]) => text + tail) },
    { weight: 1, arbitrary: fc.tuple(validChatText, rawInvalidToken).map(([text, token]) => text.replace(/"max_tokens":\d+/, `"max_tokens":${token.text}`)) },
    { weight: 1, arbitrary: unicodeText(20) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        ' ',
        '\n',
        '\u0000',
        '\u0000\u0000\u0000',
        'null',
        'true',
        '0',
        '""',
        '[]',
        '{',
        '}',
        '{"',
        '{"messages"',
        '{"messages":',
        'a=b&c=d',
        '<xml/>',
        '\uFEFF',
        '\uFEFF{}',
      ),
    },
    // Deep nesting, complete and unclosed, at the top and inside fields.
    { weight: 3, arbitrary: fc.tuple(depth, deepShape).map(([d, shape]) => deepJson(d, shape)) },
    { weight: 1, arbitrary: depth.map((d) => '['.repeat(d)) },
    { weight: 1, arbitrary: depth.map((d) => '{"a":'.repeat(d)) },
    { weight: 2, arbitrary: fc.tuple(depth, deepShape).map(([d, shape]) => `{"messages":${deepJson(d, shape, '[]')}}`) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(depth, deepShape)
        .map(([d, shape]) => `{"messages":[{"role":"user","content":"hi"}],"provider":${deepJson(d, shape, '"Local"')},"max_tokens":2}`),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(depth, deepShape)
        .map(([d, shape]) => `{"messages":[{"role":"user","content":"hi"}],"provider":"Local","api_key":{"Local":${deepJson(d, shape)}},"max_tokens":2}`),
    },
    { weight: 1, arbitrary: fc.tuple(depth, deepShape).map(([d, shape]) => `{"prompt":"cat","provider":"Local","size":${deepJson(d, shape, '"1x1"')}}`) },
    // Deep junk where the validator does not look (metadata, a content part's extra key).
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.integer({ min: 100, max: 10_000 }), deepShape, fc.constantFrom('Local', 'Fake'))
        .map(
          ([d, shape, p]) =>
            `{"model":"${p === 'Fake' ? 'test-model' : ''}","provider":"${p}","max_tokens":2,"metadata":${deepJson(d, shape)},"messages":[{"role":"user","content":"hi"}]}`,
        ),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.integer({ min: 100, max: 10_000 }), deepShape, fc.constantFrom('Local', 'Fake'))
        .map(
          ([d, shape, p]) =>
            `{"model":"${p === 'Fake' ? 'test-model' : ''}","provider":"${p}","max_tokens":2,"messages":[{"role":"user","content":[{"type":"text","text":"hi","junk":${deepJson(d, shape)}}]}]}`,
        ),
    },
    // Lone surrogates and control characters as JSON escapes, and raw invalid UTF-8 inside strings.
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.array(
            fc.constantFrom(
              '\\uD800',
              '\\uDBFF',
              '\\uDC00',
              '\\uDFFF\\uD800',
              '\\ud83d\\ude00',
              '\\u0000',
              '\\u001b[31m',
              '\\u202E',
              '\\uFEFF',
              '\\uFFFF',
              'plain',
              '\\\\',
              '\\"',
            ),
            { minLength: 1, maxLength: 8 },
          ),
          fc.constantFrom('Local', 'Fake'),
          fc.boolean(),
        )
        .map(
          ([pieces, p, stream]) =>
            `{"model":"${p === 'Fake' ? 'test-model' : ''}","provider":"${p}","max_tokens":2,"stream":${stream},"messages":[{"role":"user","content":"${pieces.join('')}"}],"user":"${pieces.join('')}","stop":["${pieces.join('')}"]}`,
        ),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.uint8Array({ minLength: 1, maxLength: 40, min: 0x80, max: 0xff }), fc.constantFrom('Local', 'Fake'))
        .map(([bytes, p]) =>
          Buffer.concat([
            Buffer.from(`{"model":"${p === 'Fake' ? 'test-model' : ''}","provider":"${p}","max_tokens":2,"messages":[{"role":"user","content":"`),
            Buffer.from(bytes),
            Buffer.from('"}]}'),
          ]),
        ),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '{"messages":"x","messages":[{"role":"user","content":"dup"}],"provider":"Local","provider":"Fake","model":"test-model","max_tokens":1}',
        '{"__proto__":{"messages":[{"role":"user","content":"x"}]}}',
        '{"constructor":{"prototype":{"polluted":true}},"messages":[{"role":"user","content":"x"}],"provider":"Local","max_tokens":1}',
      ),
    },
  );
  return fc
    .record({
      path: fc.constantFrom(...postRoutes),
      body,
      headers: jsonHeaders,
      chunks: fc.option(fc.integer({ min: 2, max: 5 }), { nil: undefined, freq: 6 }),
    })
    .map(({ path, body: b, headers, chunks }) => {
      const request: FuzzRequest = { family: 'raw-body', method: 'POST', path, headers, body: b };
      if (chunks !== undefined) request.chunks = chunks;
      const result = parsed(b);
      const isObject = result !== undefined && typeof result.value === 'object' && result.value !== null && !Array.isArray(result.value);
      if (Buffer.byteLength(b) > catalog.maxBodyBytes) request.expect = [413];
      else if (!isObject || nesting(result.value) > absurdNesting) request.expect = [400];
      return request;
    });
}

/** Bodies over INTERFERENCE_MAX_BODY_BYTES (413), declared by content-length or streamed chunked; and bodies exactly at the limit. */
export function oversizedRequests(catalog: FuzzCatalog): fc.Arbitrary<FuzzRequest> {
  const max = catalog.maxBodyBytes;
  const route = fc.constantFrom(...postRoutes, '/api/Fake/chat/completions');
  const over = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: max + 1, max: max * 3 }) },
    { weight: 1, arbitrary: fc.integer({ min: max * 3, max: max * 16 }) },
  );
  const overBody: fc.Arbitrary<string | Uint8Array> = fc.oneof(
    over.map((size) => {
      const head = '{"provider":"Fake","model":"test-model","max_tokens":1,"messages":[{"role":"user","content":"';
      const tail = '"}]}';
      return head + 'x'.repeat(size - head.length - tail.length) + tail;
    }),
    over.map((size) => deepJson(Math.ceil(size / 2) + 1, 'array', '').slice(0, size)),
    fc
      .tuple(over, fc.constantFrom('😀', 'é', '\uD800', 'a'))
      .map(([size, piece]) => serialize({ messages: [{ role: 'user', content: piece.repeat(Math.ceil(size / Buffer.byteLength(piece))) }] })),
    fc.tuple(over, fc.integer({ min: 0, max: 255 })).map(([size, byte]) => new Uint8Array(size).fill(byte)),
  );
  const atLimit: fc.Arbitrary<FuzzRequest> = fc
    .tuple(fc.constantFrom('/v1/chat/completions', '/api/Fake/chat/completions'), fc.boolean())
    .map(([path, stream]) => {
      const head = `{"provider":"Fake","model":"test-model","max_tokens":1,"stream":${stream},"messages":[{"role":"user","content":"`;
      const tail = '"}]}';
      const body = head + 'y'.repeat(max - head.length - tail.length) + tail;
      // At the limit is not over it: not a 413. (502/503 if earlier requests made Fake fail and opened its circuit.)
      return { family: 'oversized', method: 'POST', path, headers: { 'content-type': 'application/json' }, body, expect: [200, 502, 503] };
    });
  const tooBig: fc.Arbitrary<FuzzRequest> = fc
    .record({ path: route, body: overBody, headers: jsonHeaders, chunks: fc.option(fc.integer({ min: 2, max: 8 }), { nil: undefined, freq: 2 }) })
    .map(({ path, body, headers, chunks }) => {
      const request: FuzzRequest = { family: 'oversized', method: 'POST', path, headers, body, expect: [413] };
      if (chunks !== undefined) request.chunks = chunks;
      return request;
    });
  return fc.oneof({ weight: 5, arbitrary: tooBig }, { weight: 1, arbitrary: atLimit });
}

/** GET and HEAD on every read route, with odd ids, query strings, slashes and headers. */
export function readRequests(catalog: FuzzCatalog): fc.Arbitrary<FuzzRequest> {
  const providerPath = pathId(catalog.providerIds).map((id) => `/v1/providers/${id}`);
  const modelPath = pathId(catalog.modelIds).map((id) => `/v1/models/${id}`);
  const imageName = fc.oneof(
    { weight: 2, arbitrary: fc.constant(catalog.imageName) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        catalog.imageName.toUpperCase(),
        `${catalog.imageName}.png`,
        catalog.imageName.replace('.png', '.jpg'),
        `..%2F${catalog.imageName}`,
        `%2E%2E%2F%2E%2E%2Fpackage.json`,
        '0'.repeat(32) + '.png',
        'f'.repeat(32) + '.gif',
        '0'.repeat(31) + '.png',
        '0'.repeat(33) + '.png',
      ),
    },
    { weight: 3, arbitrary: pathId([catalog.imageName]) },
  );
  const imagePath = imageName.map((name) => `/images/${name}`);
  const fixed = fc.constantFrom(
    '/',
    '/v1',
    '/health',
    '/v1/models',
    '/v1/providers',
    '/v1/',
    '/health/',
    '/v1/models/',
    '/v1/providers/',
    '/images/',
    '/images',
  );
  const path = fc.oneof(
    { weight: 3, arbitrary: fixed.chain(mangle) },
    { weight: 3, arbitrary: providerPath },
    { weight: 3, arbitrary: modelPath },
    { weight: 2, arbitrary: imagePath },
    { weight: 1, arbitrary: fc.array(pathChar, { maxLength: 60 }).map((codes) => `/${String.fromCharCode(...codes)}`) },
    { weight: 1, arbitrary: fc.integer({ min: 2000, max: 10_000 }).map((length) => `/v1/${'a/'.repeat(length / 2)}`) },
  );
  const headers = fc.oneof(
    { weight: 1, arbitrary: fc.constant({}) },
    { weight: 2, arbitrary: oddHeaders },
    { weight: 1, arbitrary: fc.constant({ 'if-none-match': `"${catalog.imageName.slice(0, 32)}"` }) },
  );
  return fc
    .record({ method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD'), path: fc.tuple(path, queryString(catalog)).map(([p, q]) => p + q), headers })
    .map(({ method, path: p, headers: h }) => {
      const request: FuzzRequest = { family: 'read', method, path: p, headers: h };
      if ((p === '/health' || p.startsWith('/health?')) && /^[\x21-\x7e]*$/.test(p)) request.expect = [200];
      return request;
    });
}

const allRoutes = [
  '/',
  '/v1',
  '/health',
  '/v1/models',
  '/v1/models/gpt-4o',
  '/v1/providers',
  '/v1/providers/Groq',
  '/v1/chat/completions',
  '/api/Fake/chat/completions',
  '/v1/images/generate',
  '/v1/images/generations',
  '/images/0123456789abcdef0123456789abcdef.png',
] as const;

const unknownRoutes = [
  '/v2/models',
  '/v1/chat',
  '/v1/completions',
  '/v1/embeddings',
  '/api/',
  '/api/Fake',
  '/api/Fake/chat/completions/extra',
  '/api//chat/completions',
  '/v1/images',
  '/favicon.ico',
  '/robots.txt',
  '/.env',
  '/v1/../../etc/passwd',
  '/%2e%2e/%2e%2e/etc/passwd',
  '/v1/models/../../x',
  '/v1/providers/../../../',
] as const;

/** Every route with every method: wrong methods (405), unknown routes (404), OPTIONS (204), methods Node does not parse (400). */
export function methodRequests(catalog: FuzzCatalog): fc.Arbitrary<FuzzRequest> {
  const method = fc.constantFrom(
    'GET',
    'HEAD',
    'POST',
    'PUT',
    'DELETE',
    'PATCH',
    'OPTIONS',
    'TRACE',
    'PROPFIND',
    'PURGE',
    'MKCOL',
    'COPY',
    'LOCK',
    'SEARCH',
    'M-SEARCH',
    'NOTIFY',
    'SUBSCRIBE',
    'REPORT',
    'LINK',
    'QUERY',
    'FOO',
    'BREW',
    'X',
    'GETT',
    'post',
  );
  const path = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...allRoutes) },
    { weight: 2, arbitrary: fc.constantFrom(...unknownRoutes) },
    { weight: 1, arbitrary: pathId(catalog.providerIds).map((id) => `/${id}`) },
  );
  const body = fc.option(
    fc.oneof(
      fc.constant('{}'),
      fc.jsonValue({ maxDepth: 2 }).map((value) => serialize(value)),
      fc.uint8Array({ maxLength: 200 }),
    ),
    { nil: undefined, freq: 2 },
  );
  return fc.record({ method, path, headers: fc.oneof(fc.constant({}), oddHeaders), body }).map(({ method: m, path: p, headers, body: b }) => {
    const request: FuzzRequest = { family: 'method', method: m, path: p, headers, ...(b === undefined || m === 'GET' || m === 'HEAD' ? {} : { body: b }) };
    // Node's parser refuses bytes over 0x7E in the request target (a 400 before any route runs).
    if (m === 'OPTIONS' && /^[\x21-\x7e]*$/.test(p)) request.expect = [204];
    return request;
  });
}

/** Requests to a gateway that has its own key: junk keys in authorization and x-api-key, on every route. */
export function authRequests(catalog: FuzzCatalog, gatewayKey: string): fc.Arbitrary<FuzzRequest> {
  const auth = fc.oneof(
    fc.constant({}),
    fc.constant({ authorization: `Bearer ${gatewayKey}` }),
    fc.constant({ 'x-api-key': gatewayKey }),
    fc
      .constantFrom(
        `bearer ${gatewayKey}`,
        `Bearer  ${gatewayKey}  `,
        `Bearer ${gatewayKey}x`,
        `Bearer ${gatewayKey.slice(0, -1)}`,
        `Basic ${gatewayKey}`,
        gatewayKey,
        'Bearer',
        '',
      )
      .map((value) => ({ authorization: value })),
    fc.constantFrom(` ${gatewayKey} `, `${gatewayKey}\t`, gatewayKey.toUpperCase(), '', ' ').map((value) => ({ 'x-api-key': value })),
    headerText(300).map((value) => ({ authorization: `Bearer ${value}` })),
    headerText(300).map((value) => ({ 'x-api-key': value })),
    oddHeaders,
  );
  const request = fc.oneof(
    { weight: 2, arbitrary: readRequests(catalog) },
    { weight: 2, arbitrary: chatRequests(catalog) },
    { weight: 1, arbitrary: imageRequests(catalog) },
    { weight: 1, arbitrary: methodRequests(catalog) },
  );
  return fc.tuple(request, auth).map(([r, headers]) => {
    const { expect: _ignored, ...rest } = r;
    return { ...rest, family: 'auth', headers: { ...r.headers, ...headers } };
  });
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP

const latin1 = (text: string): Uint8Array => Buffer.from(text, 'latin1');

/** Raw requests: broken request lines, header names and framing, then random byte flips over them. */
export function rawHttpRequests(): fc.Arbitrary<RawRequest> {
  const ok = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}Connection: close\r\n\r\n`;
  const post = (head: string, body: string): string =>
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${head}Connection: close\r\n\r\n${body}`;
  const chat = '{"provider":"Local","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}';
  const templates: ReadonlyArray<[string, string]> = [
    ['garbage request line', 'GARBAGE /\r\n\r\n'],
    ['no version', 'GET /health\r\n\r\n'],
    ['HTTP/9.9', 'GET /health HTTP/9.9\r\nHost: x\r\n\r\n'],
    ['HTTP/0.9', 'GET /health\r\n'],
    ['extra token', 'GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n'],
    ['double space', 'GET  /health HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['relative target', 'GET health HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['asterisk target', 'GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
    ['absolute-form', 'GET http://127.0.0.1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
    ['absolute-form other host', 'GET http://evil.example:1/v1/models HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n'],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['lowercase method', 'get /health HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['bare LF', 'GET /health HTTP/1.1\nHost: x\nConnection: close\n\n'],
    ['bare CR', 'GET /health HTTP/1.1\rHost: x\r\r'],
    ['space in header name', ok('/health', 'Bad Header: x\r\n')],
    ['space before colon', ok('/health', 'X-Thing : x\r\n')],
    ['empty header name', ok('/health', ': x\r\n')],
    ['no colon', ok('/health', 'JustAName\r\n')],
    ['NUL in header name', ok('/health', 'X-A\u0000b: 1\r\n')],
    ['latin-1 header name', ok('/health', 'Héader: x\r\n')],
    ['separator in header name', ok('/health', '(x): y\r\n')],
    ['control char in header value', ok('/health', 'X-A: a\u0001b\r\n')],
    ['DEL in header value', ok('/health', 'X-A: a\u007fb\r\n')],
    ['NUL in header value', ok('/health', 'X-A: a\u0000b\r\n')],
    ['obs-fold', ok('/health', 'X-A: a\r\n  folded\r\n')],
    ['leading whitespace line', 'GET /health HTTP/1.1\r\n Host: x\r\nConnection: close\r\n\r\n'],
    ['raw UTF-8 in path', ok('/v1/providers/\u00f0\u009f\u0098\u0080')],
    ['raw latin-1 in path', ok('/v1/models/\u00e9\u00ff')],
    ['control char in path', ok('/v1/models/a\u0001b')],
    ['space in path', 'GET /v1/models/a b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
    ['tab in path', 'GET /v1/models/a\tb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
    ['no Host', 'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n'],
    ['two Hosts', ok('/health', 'Host: y\r\n')],
    [
      'odd Host for images',
      'POST /v1/images/generate HTTP/1.1\r\nHost: evil.example\u00ff/x\r\nContent-Type: application/json\r\nContent-Length: 34\r\nConnection: close\r\n\r\n{"prompt":"cat","provider":"Fake"}',
    ],
    ['HTTP/1.0 no Host', 'GET /v1/providers HTTP/1.0\r\n\r\n'],
    ['content-length and transfer-encoding', post('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n')],
    ['two different content-lengths', post('Content-Length: 5\r\nContent-Length: 6\r\n', '{}')],
    ['negative content-length', post('Content-Length: -1\r\n', '{}')],
    ['huge content-length', post('Content-Length: 99999999999999999999\r\n', '{}')],
    ['content-length over the limit', post('Content-Length: 10000000\r\n', '{}')],
    ['content-length with plus', post('Content-Length: +2\r\n', '{}')],
    ['content-length hex', post('Content-Length: 0x2\r\n', '{}')],
    ['body shorter than content-length', post('Content-Length: 100\r\n', '{"messages":')],
    ['body longer than content-length', post('Content-Length: 2\r\n', '{}GARBAGE / HTTP/1.1\r\n\r\n')],
    ['content-length 0', post('Content-Length: 0\r\n', '')],
    ['no content-length, no chunked', post('', chat)],
    ['good chunked', post('Transfer-Encoding: chunked\r\n', `${chat.length.toString(16)}\r\n${chat}\r\n0\r\n\r\n`)],
    ['bad chunk size', post('Transfer-Encoding: chunked\r\n', 'zz\r\n{}\r\n0\r\n\r\n')],
    ['chunk size overflow', post('Transfer-Encoding: chunked\r\n', 'ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n')],
    ['chunk extension junk', post('Transfer-Encoding: chunked\r\n', `2;\u0001=\u00ff\r\n{}\r\n0\r\n\r\n`)],
    ['unterminated chunk', post('Transfer-Encoding: chunked\r\n', '10\r\n{}')],
    ['transfer-encoding gzip, chunked', post('Transfer-Encoding: gzip, chunked\r\n', '2\r\n{}\r\n0\r\n\r\n')],
    ['transfer-encoding xchunked', post('Transfer-Encoding: xchunked\r\n', '2\r\n{}\r\n0\r\n\r\n')],
    ['chunked then identity', post('Transfer-Encoding: chunked, identity\r\n', '2\r\n{}\r\n0\r\n\r\n')],
    ['trailers', post('Transfer-Encoding: chunked\r\n', `${chat.length.toString(16)}\r\n${chat}\r\n0\r\nX-Trailer: \u00ff\r\n\r\n`)],
    ['expect 100-continue', post(`Expect: 100-continue\r\nContent-Length: ${chat.length}\r\n`, chat)],
    ['expect junk', post('Expect: something-else\r\nContent-Length: 2\r\n', '{}')],
    [
      'upgrade websocket',
      ok('/health', 'Upgrade: websocket\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n').replace('Connection: close', 'Connection: Upgrade'),
    ],
    [
      'upgrade h2c',
      ok('/v1/models', 'Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n').replace('Connection: close', 'Connection: Upgrade, HTTP2-Settings'),
    ],
    ['CONNECT', 'CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n'],
    ['headers over 16 KiB', ok('/health', `X-Big: ${'b'.repeat(17_000)}\r\n`)],
    ['request line over 16 KiB', ok(`/v1/models/${'m'.repeat(17_000)}`)],
    ['10 000 headers', ok('/health', 'X: y\r\n'.repeat(10_000))],
    [
      'pipelined',
      `GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models/x HTTP/1.1\r\nHost: x\r\n\r\nPOST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]GET /v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    ],
    ['pipelined garbage', 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n\u0000\u0001\u0002GARBAGE\r\n\r\n'],
    ['only CRLFs', '\r\n\r\n\r\n\r\n'],
    ['TLS ClientHello', '\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003'],
  ];
  const template = fc.constantFrom(...templates);
  const mutation = fc.oneof(
    { weight: 4, arbitrary: fc.constant([] as Array<[number, number]>) },
    { weight: 3, arbitrary: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }) },
  );
  const random = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes): RawRequest => ({ family: 'raw-http', description: 'random bytes', bytes }));
  const templated = fc.tuple(template, mutation).map(([[description, text], flips]): RawRequest => {
    const bytes = latin1(text);
    for (const [at, value] of flips) bytes[at % bytes.length] = value;
    return { family: 'raw-http', description: flips.length === 0 ? description : `${description}, ${flips.length} byte(s) changed`, bytes };
  });
  return fc.oneof({ weight: 5, arbitrary: templated }, { weight: 1, arbitrary: random });
}
