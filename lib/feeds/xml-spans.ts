// A small, strict scanner over the raw text of an XML document that reports where each element
// starts and ends, so a caller can cut a document into exact pieces (the feed's envelope and its
// entries) without re-serialising anything.
//
// It understands just enough XML to never be fooled by markup-looking text: comments, CDATA
// sections, processing instructions (the XML declaration included) and quoted attribute values
// are stepped over whole; start and end tags are matched on a stack. It refuses what it does not
// want to handle rather than guessing:
//   - any `<!` declaration other than a comment or CDATA (so a DOCTYPE, and with it any entity
//     declaration, ends the scan);
//   - mismatched, unterminated or unclosed tags, malformed attributes, text or a second element
//     outside the root, nesting deeper than `maxDepth`.
// Work is linear in the length of the text (indexOf and character tests only).
//
// Offsets are indices into the string given. Scanning a latin1 view of a byte buffer
// (`buf.toString('latin1')`) makes them byte offsets, which is how entries.ts keeps output bytes
// exact whatever ASCII-compatible encoding the document uses.

export interface ElementSpan {
  /** The qualified name as written (`item`, `atom:entry`). */
  name: string;
  /** 0 for the root element. */
  depth: number;
  /** Index of the `<` of the start tag. */
  start: number;
  /** Index just after the start tag's `>` (equal to `end` for an empty-element tag). */
  contentStart: number;
  /** Index of the `<` of the end tag (equal to `end` for an empty-element tag). */
  contentEnd: number;
  /** Index just after the end tag's `>`. */
  end: number;
}

/**
 * Called when an element closes, in document order of their end tags (children before their
 * parent). `ancestors` lists the qualified names from the root down to the parent; it is only
 * valid during the call. Returning false ends the scan at once (scanXml then returns null).
 */
export type ElementVisitor = (el: ElementSpan, ancestors: readonly string[]) => boolean | void;

export const DEFAULT_MAX_DEPTH = 256;

// Name characters: ASCII per the XML spec, plus any non-ASCII character (a latin1 view of UTF-8
// shows multibyte name characters as runs of U+0080..U+00FF). Tested by char code rather than
// with a regular expression: a feed has a few hundred names, and each match allocated an array.
function isNameStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x3a || c >= 0x80;
}

function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d;
}

/** XML whitespace: space, tab, LF, CR. */
export function isWsCode(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function skipWs(s: string, i: number, n: number): number {
  while (i < n && isWsCode(s.charCodeAt(i))) i++;
  return i;
}

function allWs(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isWsCode(s.charCodeAt(i))) return false;
  return true;
}

/** The index just after the name that starts at `i`; `i` itself when no name starts there. */
function nameEnd(s: string, i: number): number {
  const n = s.length;
  if (i >= n || !isNameStart(s.charCodeAt(i))) return i;
  let j = i + 1;
  while (j < n && isNameChar(s.charCodeAt(j))) j++;
  return j;
}

/** Whether the `length` characters of s at `a` and at `b` are the same. */
function sameText(s: string, a: number, b: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (s.charCodeAt(a + k) !== s.charCodeAt(b + k)) return false;
  return true;
}

/**
 * Scans `s` as one XML document (an optional byte order mark, then prolog, exactly one root
 * element, then only comments, PIs and whitespace), calling `visit` for every element at depth
 * `reportDepth` or less, and for any deeper one whose qualified name is in `alsoReport` (other
 * deeper ones are checked but not reported: no span is made for them).
 * Returns the root element's span, or null if the text is not a document this scanner accepts
 * or `visit` ended the scan. Never throws (unless `visit` does).
 */
export function scanXml(
  s: string,
  visit: ElementVisitor,
  maxDepth: number = DEFAULT_MAX_DEPTH,
  reportDepth = Infinity,
  alsoReport?: ReadonlySet<string>,
): ElementSpan | null {
  const n = s.length;
  let i = 0;
  if (s.startsWith('\uFEFF')) i = 1;
  else if (s.startsWith('\u00EF\u00BB\u00BF')) i = 3; // a UTF-8 BOM seen through latin1

  // The open elements: their names, and in `open` three numbers each: where its start tag
  // begins, where its content begins, and the length of its name as written just after the `<`
  // (end tags are matched there). One array for the three: each array's first push allocates
  // ~180 bytes, on every scan.
  const names: string[] = [];
  const open: number[] = [];
  let root: ElementSpan | null = null;

  while (i < n) {
    const lt = s.indexOf('<', i);
    const textEnd = lt < 0 ? n : lt;
    if (names.length === 0 && !allWs(s, i, textEnd)) return null; // text outside the root
    if (lt < 0) break;
    const next = s.charCodeAt(lt + 1);

    if (next === 0x21 /* ! */) {
      if (s.startsWith('<!--', lt)) {
        const close = s.indexOf('-->', lt + 4);
        if (close < 0) return null;
        i = close + 3;
      } else if (s.startsWith('<![CDATA[', lt)) {
        if (names.length === 0) return null;
        const close = s.indexOf(']]>', lt + 9);
        if (close < 0) return null;
        i = close + 3;
      } else {
        return null; // DOCTYPE (and with it any ENTITY) or another declaration: refused
      }
      continue;
    }

    if (next === 0x3f /* ? */) {
      const close = s.indexOf('?>', lt + 2);
      if (close < 0) return null;
      i = close + 2;
      continue;
    }

    if (next === 0x2f /* / */) {
      // Compared in place with the open element's name: no string is made for an end tag.
      const top = names.length - 1;
      const name = names[top];
      const end = nameEnd(s, lt + 2);
      const start = open[3 * top] ?? 0;
      if (name === undefined || end - (lt + 2) !== open[3 * top + 2] || !sameText(s, start + 1, lt + 2, end - (lt + 2))) return null;
      const gt = skipWs(s, end, n);
      if (s.charCodeAt(gt) !== 0x3e /* > */) return null;
      const contentStart = open[3 * top + 1] ?? 0;
      names.pop();
      open.pop();
      open.pop();
      open.pop();
      if (top <= reportDepth || alsoReport?.has(name) === true) {
        const el: ElementSpan = { name, depth: top, start, contentStart, contentEnd: lt, end: gt + 1 };
        if (visit(el, names) === false) return null;
        if (top === 0) root = el;
      }
      i = gt + 1;
      continue;
    }

    // A start tag (or an empty-element tag).
    const nameStop = nameEnd(s, lt + 1);
    if (nameStop === lt + 1) return null;
    if (names.length === 0 && root !== null) return null; // a second root element
    // Past reportDepth an element is named only when alsoReport may ask for it: otherwise its
    // name is never reported, nor an ancestor of one reported, and a string for each element
    // of a feed's entries was most of what reading a feed left to collect.
    const name = names.length <= reportDepth || alsoReport !== undefined ? s.slice(lt + 1, nameStop) : '';
    let j = nameStop;
    let selfClosing = false;
    let nextLt = lt;
    for (;;) {
      const before = j;
      j = skipWs(s, j, n);
      if (j >= n) return null;
      const c = s.charCodeAt(j);
      if (c === 0x3e /* > */) {
        j++;
        break;
      }
      if (c === 0x2f /* / */) {
        if (s.charCodeAt(j + 1) !== 0x3e) return null;
        j += 2;
        selfClosing = true;
        break;
      }
      if (j === before) return null; // attributes must be separated by whitespace
      const attrEnd = nameEnd(s, j);
      if (attrEnd === j) return null;
      j = skipWs(s, attrEnd, n);
      if (s.charCodeAt(j) !== 0x3d /* = */) return null;
      j = skipWs(s, j + 1, n);
      const quote = s[j];
      if (quote !== '"' && quote !== "'") return null;
      const close = s.indexOf(quote, j + 1);
      if (close < 0) return null;
      // Not allowed in attribute values. The next `<` is looked for once per tag, not once per
      // attribute, so a tag with thousands of attributes is still scanned once.
      if (nextLt <= j) {
        nextLt = s.indexOf('<', j + 1);
        if (nextLt < 0) nextLt = n;
      }
      if (nextLt < close) return null;
      j = close + 1;
    }

    if (selfClosing) {
      if (names.length <= reportDepth || alsoReport?.has(name) === true) {
        const el: ElementSpan = { name, depth: names.length, start: lt, contentStart: j, contentEnd: j, end: j };
        if (visit(el, names) === false) return null;
        if (names.length === 0) root = el;
      }
    } else {
      if (names.length >= maxDepth) return null;
      names.push(name);
      open.push(lt, j, nameStop - lt - 1);
    }
    i = j;
  }

  if (names.length > 0) return null; // unclosed elements
  return root;
}

/**
 * The text of the root element's start tag (from its `<` to its `>`), found by stepping over the
 * prolog only: what a caller needs to know of the root (its namespaces) before a scan. Null where
 * scanXml would refuse the prolog, or no start tag follows it. Does not check the document.
 */
export function rootStartTag(s: string): string | null {
  const n = s.length;
  let i = s.startsWith('\uFEFF') ? 1 : s.startsWith('\u00EF\u00BB\u00BF') ? 3 : 0;
  for (;;) {
    i = skipWs(s, i, n);
    if (s.charCodeAt(i) !== 0x3c /* < */) return null;
    if (s.startsWith('<?', i)) {
      const close = s.indexOf('?>', i + 2);
      if (close < 0) return null;
      i = close + 2;
    } else if (s.startsWith('<!--', i)) {
      const close = s.indexOf('-->', i + 4);
      if (close < 0) return null;
      i = close + 3;
    } else {
      break;
    }
  }
  if (nameEnd(s, i + 1) === i + 1) return null; // a DOCTYPE, or no tag at all
  // The tag's end: the first `>` outside a quoted attribute value.
  let quote = 0;
  for (let j = i + 1; j < n; j++) {
    const c = s.charCodeAt(j);
    if (quote !== 0) {
      if (c === quote) quote = 0;
    } else if (c === 0x22 || c === 0x27) {
      quote = c;
    } else if (c === 0x3e /* > */) {
      return s.slice(i, j + 1);
    }
  }
  return null;
}
