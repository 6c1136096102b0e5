// Characters XML 1.0 cannot carry at all, not even as references (C0 controls, U+FFFE/FFFF,
// lone surrogates). Strangers' text reaches replies (a URL in an error message), so they are
// replaced with U+FFFD, the honest stand-in, rather than make the whole reply malformed.
export const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Escapes text for an XML attribute value or element content. */
export function escapeXml(s: string): string {
  return s
    .replace(NOT_XML_CHAR, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}
