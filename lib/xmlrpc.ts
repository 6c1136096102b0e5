// A small XML-RPC codec (https://xmlrpc.com/spec.md) on fast-xml-parser.
//
// Parsing is deliberately defensive because request bodies come from anyone on the
// internet: DTDs are refused outright (no entity expansion, no external entities),
// fast-xml-parser's own entity handling is switched off and only the five predefined
// entities plus numeric character references are decoded here, and the size, nesting
// and element count of a document are bounded. Every parse failure is an XmlRpcError
// whose message is fit to be sent back verbatim as a faultString.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { NOT_XML_CHAR, escapeXml } from './xml-escape.js';

export type XmlRpcValue =
  | string
  | number
  | boolean
  | Date
  | Buffer
  | XmlRpcValue[]
  | { [member: string]: XmlRpcValue };

export interface MethodCall {
  methodName: string;
  params: XmlRpcValue[];
}

export type MethodResponse =
  | { kind: 'value'; value: XmlRpcValue }
  | { kind: 'fault'; code: number; message: string };

export interface XmlRpcLimits {
  /** Maximum nesting of values: a top-level param is depth 1, each array/struct adds one. */
  maxDepth: number;
  /** Maximum number of XML elements in the document. */
  maxElements: number;
  /** Maximum document size in UTF-8 bytes; unchecked when absent (the HTTP layer caps bodies). */
  maxBytes?: number;
}

export const DEFAULT_XMLRPC_LIMITS: XmlRpcLimits = Object.freeze({ maxDepth: 32, maxElements: 10000 });

export class XmlRpcError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlRpcError';
  }
}

// ---------------------------------------------------------------------------------------
// Building

const XML_DECL = '<?xml version="1.0"?>\n';
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

function escapeText(s: string): string {
  // A raw CR would be normalised to LF by the receiving parser.
  return escapeXml(s).replace(/\r/g, '&#13;');
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function formatDate(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new TypeError('XML-RPC cannot encode an invalid Date');
  return (
    `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCDate(), 2)}` +
    `T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`
  );
}

function encodeValue(value: XmlRpcValue, untypedStrings: boolean): string {
  return `<value>${encodeInner(value, untypedStrings)}</value>`;
}

function encodeInner(value: XmlRpcValue, untyped: boolean): string {
  if (typeof value === 'string') {
    return untyped ? escapeText(value) : `<string>${escapeText(value)}</string>`;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('XML-RPC cannot encode NaN or Infinity');
    if (Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX) {
      return `<int>${value === 0 ? 0 : value}</int>`; // `=== 0` folds -0 into 0
    }
    return `<double>${String(value)}</double>`;
  }
  if (typeof value === 'boolean') return `<boolean>${value ? 1 : 0}</boolean>`;
  if (value instanceof Date) return `<dateTime.iso8601>${formatDate(value)}</dateTime.iso8601>`;
  if (value instanceof Uint8Array) {
    return `<base64>${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')}</base64>`;
  }
  if (Array.isArray(value)) {
    return `<array><data>${value.map((v) => encodeValue(v, untyped)).join('')}</data></array>`;
  }
  if (typeof value === 'object' && value !== null) {
    const members = Object.keys(value).map((name) => {
      const member = value[name] as XmlRpcValue;
      return `<member><name>${escapeText(name)}</name>${encodeValue(member, untyped)}</member>`;
    });
    return `<struct>${members.join('')}</struct>`;
  }
  throw new TypeError(`XML-RPC cannot encode a value of type ${typeof value}`);
}

export function buildMethodResponse(value: XmlRpcValue): string {
  return `${XML_DECL}<methodResponse><params><param>${encodeValue(value, false)}</param></params></methodResponse>`;
}

export function buildFault(code: number, message: string): string {
  if (!Number.isInteger(code) || code < INT32_MIN || code > INT32_MAX) {
    throw new TypeError('XML-RPC faultCode must be a 32-bit integer');
  }
  const struct = encodeValue({ faultCode: code, faultString: message }, false);
  return `${XML_DECL}<methodResponse><fault>${struct}</fault></methodResponse>`;
}

export function buildMethodCall(
  methodName: string,
  params: XmlRpcValue[],
  opts: { untypedStrings?: boolean } = {},
): string {
  const untyped = opts.untypedStrings === true;
  const encoded = params.map((p) => `<param>${encodeValue(p, untyped)}</param>`).join('');
  return `${XML_DECL}<methodCall><methodName>${escapeText(methodName)}</methodName><params>${encoded}</params></methodCall>`;
}

// ---------------------------------------------------------------------------------------
// Parsing

// With preserveOrder every node is an object with a single key (the tag name, '#text',
// '#cdata' or '#comment'); element and CDATA/comment keys hold an array of child nodes.
type XNode = Record<string, unknown>;

/** One parser per nesting limit, made once: an XMLParser holds only its options. */
const parsers = new Map<number, XMLParser>();
const parser = (maxNestedTags: number): XMLParser => {
  let p = parsers.get(maxNestedTags);
  if (!p) parsers.set(maxNestedTags, (p = newParser(maxNestedTags)));
  return p;
};

const newParser = (maxNestedTags: number): XMLParser =>
  new XMLParser({
    preserveOrder: true, // keeps struct member / array item order and interleaved text
    trimValues: false, // untyped and <string> values keep their whitespace exactly
    parseTagValue: false, // every text node stays a string; typing is ours
    ignoreAttributes: true,
    processEntities: false, // we decode references ourselves (see decodeReferences)
    cdataPropName: '#cdata', // CDATA stays separate so its content is not entity-decoded
    commentPropName: '#comment', // so comments can be told apart from text and skipped
    ignoreDeclaration: true,
    ignorePiTags: true,
    maxNestedTags,
  });

/** Parsing context: which message prefix to use ("call" or "response") and the limits. */
interface Ctx {
  what: 'call' | 'response';
  limits: XmlRpcLimits;
}

function fail(ctx: Ctx, detail: string): never {
  throw new XmlRpcError(`Bad XML-RPC ${ctx.what}, ${detail}`);
}

function kindOf(node: XNode): string {
  for (const key of Object.keys(node)) if (key !== ':@') return key;
  return '';
}

function childrenOf(node: XNode): XNode[] {
  const c = node[kindOf(node)];
  return Array.isArray(c) ? (c as XNode[]) : [];
}

function isElement(kind: string): boolean {
  return kind !== '#text' && kind !== '#cdata' && kind !== '#comment';
}

/**
 * Decodes the predefined entities and numeric character references in raw text.
 * Anything else after '&' (an undeclared entity, a bad code point) is not well-formed XML.
 */
function decodeReferences(ctx: Ctx, raw: string): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(/&([^;&]*)(;?)/g, (_m, ref: string, semi: string) => {
    if (semi === ';') {
      switch (ref) {
        case 'amp': return '&';
        case 'lt': return '<';
        case 'gt': return '>';
        case 'quot': return '"';
        case 'apos': return "'";
      }
      const m = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(ref);
      if (m) {
        const cp = m[1] !== undefined ? parseInt(m[1], 16) : parseInt(m[2] ?? '', 10);
        const ch = cp <= 0x10ffff ? String.fromCodePoint(cp) : '';
        if (ch !== '' && ch.replace(NOT_XML_CHAR, '') === ch) return ch;
      }
    }
    return fail(ctx, 'the XML is not well-formed.');
  });
}

/** Concatenated, decoded text of a node's text and CDATA children; errors on child elements. */
function textOf(ctx: Ctx, node: XNode): string {
  let out = '';
  for (const child of childrenOf(node)) {
    const kind = kindOf(child);
    if (kind === '#text') out += decodeReferences(ctx, String(child[kind]));
    else if (kind === '#cdata') out += childrenOf(child).map((t) => String(t['#text'] ?? '')).join('');
    else if (kind !== '#comment') fail(ctx, `unexpected <${kind}> element inside <${kindOf(node)}>.`);
  }
  return out;
}

/** Element children of a structural node; only whitespace and comments may sit between them. */
function elementsOf(ctx: Ctx, node: XNode): XNode[] {
  const out: XNode[] = [];
  for (const child of childrenOf(node)) {
    const kind = kindOf(child);
    if (isElement(kind)) out.push(child);
    else if (kind === '#cdata' || (kind === '#text' && String(child[kind]).trim() !== '')) {
      fail(ctx, `unexpected text inside <${kindOf(node)}>.`);
    }
  }
  return out;
}

/** Counts elements and checks element nesting against the limits before any decoding. */
function checkShape(ctx: Ctx, roots: XNode[], maxElementDepth: number): void {
  let count = 0;
  const stack: Array<[XNode, number]> = roots.map((n) => [n, 1]);
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [XNode, number];
    if (!isElement(kindOf(node))) continue;
    if (++count > ctx.limits.maxElements) tooMany(ctx);
    if (depth > maxElementDepth) tooDeep(ctx);
    for (const child of childrenOf(node)) stack.push([child, depth + 1]);
  }
}

function tooMany(ctx: Ctx): never {
  return fail(ctx, `the ${ctx.what === 'call' ? 'request' : 'response'} has too many elements.`);
}

/** How many times `char` occurs in `text`. */
function occurrences(text: string, char: string): number {
  let n = 0;
  for (let at = text.indexOf(char); at !== -1; at = text.indexOf(char, at + 1)) n++;
  return n;
}

function tooDeep(ctx: Ctx): never {
  return fail(ctx, `the ${ctx.what === 'call' ? 'request' : 'response'} is too deeply nested.`);
}

/** Shared front half of both parsers: safety checks, well-formedness, limits, root element. */
function parseDocument(ctx: Ctx, xml: string, rootName: string): XNode | undefined {
  const { limits } = ctx;
  if (limits.maxBytes !== undefined && Buffer.byteLength(xml, 'utf8') > limits.maxBytes) {
    fail(ctx, `the ${ctx.what === 'call' ? 'request' : 'response'} is too large.`);
  }
  // Refused before any parsing, wherever they appear: no DTD means no entity expansion
  // ("billion laughs") and no external entities.
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) {
    fail(ctx, 'DOCTYPE and entity declarations are not allowed.');
  }
  // Every element takes a '<' (two unless empty), and '<' appears nowhere else but in comments,
  // CDATA and processing instructions: a document with far more than the limit allows is
  // refused before the validator and the parser spend ~1 ms per KB on it.
  if (occurrences(xml, '<') > 2 * limits.maxElements + 64) tooMany(ctx);
  // Drop a byte-order mark; normalise line ends as XML 1.0 §2.11 requires. Whitespace before the
  // declaration (a body built in an indented PHP heredoc, or echoed after a blank line) is not
  // XML, but the IXR and WordPress servers every pinger was tried against cut it away: so do we.
  const text = xml.replace(/^\uFEFF/, '').replace(/^\s+(?=<\?xml[\s?])/, '').replace(/\r\n?/g, '\n');
  if (text.trim() === '') return undefined;
  if (XMLValidator.validate(text) !== true) fail(ctx, 'the XML is not well-formed.');

  // Valid documents never nest elements deeper than this: a value at depth d sits at
  // element depth 3d+1 (root, params, param, then value/array/data per level) and a
  // struct member's <name> three levels under its value.
  const maxElementDepth = 3 * limits.maxDepth + 4;
  let nodes: XNode[];
  try {
    nodes = parser(maxElementDepth).parse(text) as XNode[];
  } catch (err) {
    if (err instanceof Error && /nested/i.test(err.message)) tooDeep(ctx);
    fail(ctx, 'the XML is not well-formed.');
  }
  checkShape(ctx, nodes, maxElementDepth);

  // The validator lets trailing text or a second root through; XML does not.
  const roots = nodes.filter((n) => isElement(kindOf(n)));
  const strayText = nodes.some((n) => kindOf(n) === '#text' && String(n['#text']).trim() !== '');
  if (roots.length > 1 || strayText) fail(ctx, 'the XML is not well-formed.');
  const root = roots[0];
  return root !== undefined && kindOf(root) === rootName ? root : undefined;
}

const INT_RE = /^[+-]?\d+$/;
// The fraction is `(?:\.\d*)?`, not `\.?\d*`: with the '.' optional on its own, `\d+` and `\d*`
// could split a run of digits at every place, each split tried when the run ended in no number
// (a <double> of 64 KB of digits and a letter took ~2 s). Each part now starts where the one
// before cannot go on, so a failing value is given up in time linear in its length.
const DOUBLE_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const DATE_RE =
  /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

function parseDate(ctx: Ctx, s: string): Date {
  const m = DATE_RE.exec(s.trim());
  if (!m) fail(ctx, 'invalid dateTime.iso8601 value.');
  const [, y, mo, d, h, mi, sec, frac, zone] = m;
  const n = [y, mo, d, h, mi, sec].map(Number) as [number, number, number, number, number, number];
  const ms = frac ? Math.floor(Number(`0.${frac}`) * 1000) : 0;
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  date.setUTCFullYear(n[0], n[1] - 1, n[2]);
  date.setUTCHours(n[3], n[4], n[5], ms);
  // Reject out-of-range fields (Feb 30, 25:00) instead of letting Date roll them over.
  if (
    date.getUTCFullYear() !== n[0] || date.getUTCMonth() !== n[1] - 1 || date.getUTCDate() !== n[2] ||
    date.getUTCHours() !== n[3] || date.getUTCMinutes() !== n[4] || date.getUTCSeconds() !== n[5]
  ) {
    fail(ctx, 'invalid dateTime.iso8601 value.');
  }
  // No zone: XML-RPC leaves it unspecified; we read it as UTC, as we write it.
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offH = Number(digits.slice(0, 2));
    const offM = digits.length > 2 ? Number(digits.slice(2)) : 0;
    if (offH > 23 || offM > 59) fail(ctx, 'invalid dateTime.iso8601 value.');
    date.setTime(date.getTime() - sign * (offH * 60 + offM) * 60000);
  }
  return date;
}

function parseInteger(ctx: Ctx, type: string, s: string): number {
  const t = s.trim();
  const n = Number(t);
  const ok = INT_RE.test(t) && (type === 'i8' ? Number.isSafeInteger(n) : n >= INT32_MIN && n <= INT32_MAX);
  if (!ok) fail(ctx, `invalid ${type} value.`);
  return n === 0 ? 0 : n; // fold "-0" into 0
}

function decodeTyped(ctx: Ctx, typed: XNode, depth: number): XmlRpcValue {
  const type = kindOf(typed);
  switch (type) {
    case 'string':
      return textOf(ctx, typed);
    case 'i4':
    case 'int':
    case 'i8':
      return parseInteger(ctx, type, textOf(ctx, typed));
    case 'double': {
      const t = textOf(ctx, typed).trim();
      const n = Number(t);
      if (!DOUBLE_RE.test(t) || !Number.isFinite(n)) fail(ctx, 'invalid double value.');
      return n;
    }
    case 'boolean': {
      const t = textOf(ctx, typed).trim().toLowerCase();
      if (t === '1' || t === 'true') return true;
      if (t === '0' || t === 'false') return false;
      return fail(ctx, 'invalid boolean value.');
    }
    case 'base64': {
      const t = textOf(ctx, typed).replace(/\s+/g, '');
      if (!BASE64_RE.test(t) || t.length % 4 === 1) fail(ctx, 'invalid base64 value.');
      return Buffer.from(t, 'base64');
    }
    case 'dateTime.iso8601':
      return parseDate(ctx, textOf(ctx, typed));
    case 'nil':
    case 'ex:nil':
      // An extension (no value). We have no null in XmlRpcValue and no method of ours
      // takes an optional argument, so it reads as the empty string.
      if (textOf(ctx, typed).trim() !== '') fail(ctx, 'invalid nil value.');
      return '';
    case 'array': {
      const [data, ...extra] = elementsOf(ctx, typed);
      if (!data || kindOf(data) !== 'data' || extra.length > 0) fail(ctx, 'an <array> must hold one <data> element.');
      return elementsOf(ctx, data).map((v) => {
        if (kindOf(v) !== 'value') fail(ctx, 'an array <data> may only hold <value> elements.');
        return decodeValue(ctx, v, depth + 1);
      });
    }
    case 'struct': {
      const out: { [member: string]: XmlRpcValue } = {};
      for (const member of elementsOf(ctx, typed)) {
        if (kindOf(member) !== 'member') fail(ctx, 'a <struct> may only hold <member> elements.');
        const parts = elementsOf(ctx, member);
        const name = parts.find((p) => kindOf(p) === 'name');
        const value = parts.find((p) => kindOf(p) === 'value');
        if (parts.length !== 2 || !name || !value) fail(ctx, 'a <member> must hold one <name> and one <value>.');
        // defineProperty so that a member called "__proto__" is data, not a prototype swap.
        Object.defineProperty(out, textOf(ctx, name), {
          value: decodeValue(ctx, value, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    default:
      return fail(ctx, `unknown value type <${type}>.`);
  }
}

function decodeValue(ctx: Ctx, valueNode: XNode, depth: number): XmlRpcValue {
  if (depth > ctx.limits.maxDepth) tooDeep(ctx);
  const children = childrenOf(valueNode);
  const elements = children.filter((c) => isElement(kindOf(c)));
  // No child element: an untyped value, which the spec defines as a string.
  if (elements.length === 0) return textOf(ctx, valueNode);
  // One typed child; whitespace around it is indentation, not content.
  const [typed] = elementsOf(ctx, valueNode);
  if (elements.length > 1 || !typed) fail(ctx, 'a <value> must hold a single typed element.');
  return decodeTyped(ctx, typed, depth);
}

function limitsOf(limits: XmlRpcLimits | undefined): XmlRpcLimits {
  return limits ?? DEFAULT_XMLRPC_LIMITS;
}

/** Wraps unexpected internal failures so callers only ever see XmlRpcError. */
function guarded<T>(ctx: Ctx, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof XmlRpcError) throw err;
    return fail(ctx, 'the XML could not be decoded.');
  }
}

export function parseMethodCall(xml: string, limits?: XmlRpcLimits): MethodCall {
  const ctx: Ctx = { what: 'call', limits: limitsOf(limits) };
  return guarded(ctx, () => {
    const root = parseDocument(ctx, xml, 'methodCall');
    if (!root) fail(ctx, 'missing "methodCall" element.');
    const parts = elementsOf(ctx, root);
    const nameNode = parts.find((p) => kindOf(p) === 'methodName');
    const methodName = nameNode ? textOf(ctx, nameNode).trim() : '';
    if (methodName === '') fail(ctx, 'missing "methodName" element.');
    const paramsNode = parts.find((p) => kindOf(p) === 'params');
    const params = paramsNode ? elementsOf(ctx, paramsNode).map((param) => decodeParam(ctx, param)) : [];
    return { methodName, params };
  });
}

function decodeParam(ctx: Ctx, param: XNode): XmlRpcValue {
  // Checked before its children are read: a <value> put straight in <params> was refused for
  // "unexpected text inside <value>", blaming a URL that was fine instead of the missing <param>.
  if (kindOf(param) !== 'param') fail(ctx, 'each <param> must hold one <value>.');
  const [value, ...extra] = elementsOf(ctx, param);
  if (!value || kindOf(value) !== 'value' || extra.length > 0) fail(ctx, 'each <param> must hold one <value>.');
  return decodeValue(ctx, value, 1);
}

export function parseMethodResponse(xml: string, limits?: XmlRpcLimits): MethodResponse {
  const ctx: Ctx = { what: 'response', limits: limitsOf(limits) };
  return guarded(ctx, () => {
    const root = parseDocument(ctx, xml, 'methodResponse');
    if (!root) fail(ctx, 'missing "methodResponse" element.');
    const [body, ...extra] = elementsOf(ctx, root);
    if (!body || extra.length > 0) fail(ctx, 'a <methodResponse> must hold <params> or <fault>.');
    if (kindOf(body) === 'params') {
      const params = elementsOf(ctx, body);
      if (params.length !== 1 || !params[0]) fail(ctx, 'a response must carry exactly one <param>.');
      return { kind: 'value', value: decodeParam(ctx, params[0]) };
    }
    if (kindOf(body) === 'fault') {
      const [value, ...more] = elementsOf(ctx, body);
      if (!value || kindOf(value) !== 'value' || more.length > 0) fail(ctx, 'a <fault> must hold one <value>.');
      const fault = decodeValue(ctx, value, 1);
      const isStruct = typeof fault === 'object' && !Array.isArray(fault) && !(fault instanceof Date) && !Buffer.isBuffer(fault);
      const code = isStruct ? fault['faultCode'] : undefined;
      const message = isStruct ? fault['faultString'] : undefined;
      if (typeof code !== 'number' || !Number.isInteger(code) || typeof message !== 'string') {
        fail(ctx, 'a fault must be a struct with an int faultCode and a string faultString.');
      }
      return { kind: 'fault', code, message };
    }
    return fail(ctx, 'a <methodResponse> must hold <params> or <fault>.');
  });
}
