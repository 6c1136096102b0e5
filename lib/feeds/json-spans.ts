// Byte ranges of a JSON Feed's items, so that a partial feed can be the original bytes minus the
// unchanged items, as an XML one is (see xml-spans.ts). Re-serialised instead, the delivered
// items were not the publisher's: a numeric id past 2^53 came out as another number (and two
// sequential ids as one), and a feed served as ISO-8859-1 went out as UTF-8 under that label.
//
// Runs on a latin1 view of the bytes of a text JSON.parse has already accepted, so it checks
// nothing: every structural character is ASCII, and in an ASCII-compatible encoding no byte of
// a multibyte character is one. Linear, no recursion.

export interface JsonItemSpans {
  /** Index of the items array's `[`. */
  open: number;
  /** One per element, in order: `lead` is just after the `[` or `,` before it (its leading whitespace included). */
  elements: { lead: number; start: number; end: number }[];
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function skipWs(s: string, i: number): number {
  while (i < s.length && isWs(s.charCodeAt(i))) i++;
  return i;
}

/** The index just after the string whose opening quote is at `i`. */
function stringEnd(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === BACKSLASH) j++;
    else if (c === QUOTE) return j + 1;
  }
  return s.length;
}

/** The index just after the value that starts at `i`. */
function valueEnd(s: string, i: number): number {
  let depth = 0;
  for (let j = i; j < s.length; j++) {
    const c = s[j];
    if (c === '"') {
      j = stringEnd(s, j) - 1;
      if (depth === 0) return j + 1;
    } else if (c === '{' || c === '[') {
      depth++;
    } else if (c === '}' || c === ']') {
      if (depth === 0) return j; // the end of a number, true, false or null
      if (--depth === 0) return j + 1;
    } else if (depth === 0 && (c === ',' || isWs(s.charCodeAt(j)))) {
      return j;
    }
  }
  return s.length;
}

/**
 * The elements of the top-level object's "items" array (the last such member, as JSON.parse
 * takes it) in `s`, a valid JSON text seen through latin1; null when there is none.
 */
export function jsonItemSpans(s: string): JsonItemSpans | null {
  let i = skipWs(s, s.startsWith('\u00EF\u00BB\u00BF') ? 3 : s.startsWith('\uFEFF') ? 1 : 0);
  if (s[i] !== '{') return null;
  let found: JsonItemSpans | null = null;
  i = skipWs(s, i + 1);
  while (s[i] === '"') {
    const keyEnd = stringEnd(s, i);
    const raw = s.slice(i, keyEnd);
    // An escaped key ("\u0069tems") is the same key to JSON.parse.
    const key = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
    i = skipWs(s, skipWs(s, keyEnd) + 1); // past the colon
    if (key === 'items' && s[i] === '[') {
      const spans: JsonItemSpans = { open: i, elements: [] };
      let lead = i + 1;
      let j = skipWs(s, lead);
      while (s[j] !== ']' && j < s.length) {
        const end = valueEnd(s, j);
        if (end <= j) return null; // not the valid JSON it was said to be: never loop on it
        spans.elements.push({ lead, start: j, end });
        j = skipWs(s, end);
        if (s[j] === ',') {
          lead = j + 1;
          j = skipWs(s, lead);
        }
      }
      found = spans;
      i = j + 1;
    } else {
      const end = valueEnd(s, i);
      if (end <= i) return null;
      i = end;
    }
    i = skipWs(s, i);
    if (s[i] === ',') i = skipWs(s, i + 1);
  }
  return found;
}
