// windows-1252, as the WHATWG Encoding Standard defines it (and with it every label that names
// it: latin1, iso-8859-1, us-ascii...), gives bytes 0x80-0x9F printable characters: curly quotes,
// dashes, the euro sign. Node's TextDecoder gives them as C1 control characters instead, since
// 20.18.3 and 22.13.0 (nodejs/node#56542, #60888), so a feed declaring ISO-8859-1 and written on
// Windows reached browsers with U+0093 where its titles had “. The decoded text is mended here;
// on a Node that decodes them right, no such character is left to mend.

/** What windows-1252 bytes 0x80..0x9F decode to (five are undefined, and stay as they are). */
const HIGH =
  '\u20AC\u0081\u201A\u0192\u201E\u2026\u2020\u2021\u02C6\u2030\u0160\u2039\u0152\u008D\u017D\u008F' +
  '\u0090\u2018\u2019\u201C\u201D\u2022\u2013\u2014\u02DC\u2122\u0161\u203A\u0153\u009D\u017E\u0178';

const C1 = /[\u0080-\u009F]/g;

/** Text a windows-1252 TextDecoder gave, with the C1 characters it should not have given replaced. */
export function mendWindows1252(text: string): string {
  C1.lastIndex = 0;
  return C1.test(text) ? text.replace(C1, (c) => HIGH[c.charCodeAt(0) - 0x80] ?? c) : text;
}
