// What a Content-Type says (its media type and charset) and the text of bytes sent under it.
// Feeds fetched by the hub and bodies posted to it are both read this way, so it lives beside
// neither: a request body's charset is no part of feed discovery.
import { TextDecoder } from 'node:util';
import { mendWindows1252 } from './feeds/windows-1252.js';

export function mediaType(contentType: string): { type: string; charset: string } {
  const parts = contentType.split(';');
  const type = (parts[0] ?? '').trim().toLowerCase();
  let charset = '';
  for (const p of parts.slice(1)) {
    const m = /^\s*charset\s*=\s*"?([A-Za-z0-9._:-]+)"?\s*$/i.exec(p);
    if (m?.[1] !== undefined) charset = m[1];
  }
  return { type, charset };
}

/**
 * Decoders by label, made once: a TextDecoder without `stream` keeps no state between calls,
 * and making one costs more than decoding an entry. Labels come from strangers, so only
 * valid ones are kept, and only so many.
 */
const decoders = new Map<string, TextDecoder>();
const MAX_DECODERS = 64;

const UTF8 = new TextDecoder('utf-8');

function tryDecoder(label: string): TextDecoder | null {
  const known = decoders.get(label);
  if (known) return known;
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label);
  } catch {
    return null;
  }
  if (decoders.size < MAX_DECODERS) decoders.set(label, decoder);
  return decoder;
}

/** Decodes bytes to text: BOM first, then the Content-Type charset, then an XML declaration, else UTF-8. */
export function decodeBytes(bytes: Uint8Array, charset: string): string {
  if (bytes.length === 0) return '';
  let decoder: TextDecoder | null = null;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) decoder = tryDecoder('utf-8');
  else if (bytes[0] === 0xff && bytes[1] === 0xfe) decoder = tryDecoder('utf-16le');
  else if (bytes[0] === 0xfe && bytes[1] === 0xff) decoder = tryDecoder('utf-16be');
  if (decoder === null && charset !== '') decoder = tryDecoder(charset);
  if (decoder === null) {
    const head = Buffer.from(bytes.subarray(0, 256)).toString('latin1');
    const m = /^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']/.exec(head);
    if (m?.[1] !== undefined) decoder = tryDecoder(m[1]);
  }
  if (decoder === null) decoder = UTF8;
  try {
    const text = decoder.decode(bytes);
    return decoder.encoding === 'windows-1252' ? mendWindows1252(text) : text;
  } catch {
    return UTF8.decode(bytes);
  }
}
