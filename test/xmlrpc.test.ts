import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import xmlrpc from 'xmlrpc';
import {
  DEFAULT_XMLRPC_LIMITS,
  XmlRpcError,
  buildFault,
  buildMethodCall,
  buildMethodResponse,
  parseMethodCall,
  parseMethodResponse,
  type XmlRpcValue,
} from '../lib/xmlrpc.js';

const DECL = '<?xml version="1.0"?>\n';

/** A methodCall document whose params are the given <value> inner XML strings. */
function callXml(...values: string[]): string {
  const params = values.map((v) => `<param><value>${v}</value></param>`).join('');
  return `${DECL}<methodCall><methodName>t.m</methodName><params>${params}</params></methodCall>`;
}

function param(valueInner: string): XmlRpcValue {
  const { params } = parseMethodCall(callXml(valueInner));
  expect(params).to.have.length(1);
  return params[0] as XmlRpcValue;
}

/** The XmlRpcError a call throws; fails the test on any other outcome. */
function failure(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).to.be.instanceOf(XmlRpcError);
    return (err as XmlRpcError).message;
  }
  expect.fail('expected an XmlRpcError');
}

const roundTrip = (v: XmlRpcValue): XmlRpcValue => {
  const res = parseMethodResponse(buildMethodResponse(v));
  if (res.kind !== 'value') throw new Error('expected a value');
  return res.value;
};

describe('xmlrpc codec', () => {
  describe('building', () => {
    it('writes the declaration and typed values', () => {
      const xml = buildMethodResponse(['a', 1, -2147483648, 2147483648, 1.5, true, false]);
      expect(xml.startsWith('<?xml version="1.0"?>\n<methodResponse><params><param><value>')).to.equal(true);
      expect(xml).to.contain(
        '<array><data><value><string>a</string></value><value><int>1</int></value>' +
          '<value><int>-2147483648</int></value><value><double>2147483648</double></value>' +
          '<value><double>1.5</double></value><value><boolean>1</boolean></value>' +
          '<value><boolean>0</boolean></value></data></array>',
      );
    });

    it('writes dates as YYYYMMDDTHH:MM:SS in UTC, buffers as base64, structs in key order', () => {
      const xml = buildMethodResponse({
        when: new Date(Date.UTC(2024, 0, 5, 3, 4, 5)),
        blob: Buffer.from('hi'),
        z: 'last',
      });
      expect(xml).to.contain(
        '<struct><member><name>when</name><value><dateTime.iso8601>20240105T03:04:05</dateTime.iso8601></value></member>' +
          '<member><name>blob</name><value><base64>aGk=</base64></value></member>' +
          '<member><name>z</name><value><string>last</string></value></member></struct>',
      );
    });

    it('escapes markup characters', () => {
      const xml = buildMethodResponse('http://x.test/?a=1&b=<2>"');
      expect(xml).to.contain('<string>http://x.test/?a=1&amp;b=&lt;2&gt;&quot;</string>');
    });

    it('writes a fault struct', () => {
      expect(buildFault(4, 'No & good')).to.equal(
        `${DECL}<methodResponse><fault><value><struct>` +
          '<member><name>faultCode</name><value><int>4</int></value></member>' +
          '<member><name>faultString</name><value><string>No &amp; good</string></value></member>' +
          '</struct></value></fault></methodResponse>',
      );
    });

    it('writes untyped strings only when asked (rssCloud notify)', () => {
      const url = 'http://feed.test/rss?x=1&y=2';
      expect(buildMethodCall('cloud.notify', [url], { untypedStrings: true })).to.equal(
        `${DECL}<methodCall><methodName>cloud.notify</methodName><params>` +
          '<param><value>http://feed.test/rss?x=1&amp;y=2</value></param></params></methodCall>',
      );
      expect(buildMethodCall('m', [url])).to.contain('<value><string>http://feed.test/rss?x=1&amp;y=2</string></value>');
    });

    it('refuses values XML-RPC cannot carry', () => {
      expect(() => buildMethodResponse(Number.NaN)).to.throw(TypeError);
      expect(() => buildMethodResponse(new Date(Number.NaN))).to.throw(TypeError);
      expect(() => buildFault(1.5, 'x')).to.throw(TypeError);
    });
  });

  describe('round trips', () => {
    const cases: Array<[string, XmlRpcValue]> = [
      ['string', 'hello world'],
      ['empty string', ''],
      ['string with markup and whitespace', '  a & b < c > d "q" \'s\'\n\ttab \r cr '],
      ['non-ASCII', 'héllo ☃ 𝄞'],
      ['int', 42],
      ['negative int', -7],
      ['large integer as double', 2 ** 40],
      ['double', -0.125],
      ['true', true],
      ['false', false],
      ['date', new Date(Date.UTC(1999, 11, 31, 23, 59, 58))],
      ['base64', Buffer.from([0, 1, 2, 250, 255])],
      ['empty base64', Buffer.alloc(0)],
      ['empty array', []],
      ['empty struct', {}],
      [
        'nested',
        { list: [1, 'two', [3, { four: 4 }]], inner: { deep: { deeper: [true, new Date(0)] } }, '__proto__': 'data' },
      ],
    ];
    for (const [label, value] of cases) {
      it(`${label} via methodResponse`, () => {
        expect(roundTrip(value)).to.deep.equal(value);
      });
      it(`${label} via methodCall`, () => {
        const call = parseMethodCall(buildMethodCall('a.b', [value, value]));
        expect(call).to.deep.equal({ methodName: 'a.b', params: [value, value] });
      });
    }

    it('keeps struct member order', () => {
      const value = roundTrip({ z: 1, a: 2, m: 3 });
      expect(Object.keys(value as object)).to.deep.equal(['z', 'a', 'm']);
    });

    it('keeps a "__proto__" member as data, not a prototype', () => {
      const value = param('<struct><member><name>__proto__</name><value><struct><member><name>polluted</name><value>1</value></member></struct></value></member></struct>');
      expect(Object.getPrototypeOf(value)).to.equal(Object.prototype);
      expect(Object.keys(value as object)).to.deep.equal(['__proto__']);
      expect(({} as Record<string, unknown>)['polluted']).to.equal(undefined);
    });

    it('round-trips untyped strings', () => {
      const s = ' http://a.test/?q=1&r=<2>  \n ';
      expect(parseMethodCall(buildMethodCall('n', [s, { u: s }], { untypedStrings: true })).params).to.deep.equal([s, { u: s }]);
    });

    it('round-trips faults', () => {
      expect(parseMethodResponse(buildFault(-32600, 'bad <thing> & more'))).to.deep.equal({
        kind: 'fault',
        code: -32600,
        message: 'bad <thing> & more',
      });
    });
  });

  describe('parsing values', () => {
    it('reads untyped values as strings, whitespace exactly', () => {
      expect(param('  two  words \n and a line ')).to.equal('  two  words \n and a line ');
      expect(param('')).to.equal('');
      expect(parseMethodCall(callXml('').replace('<value></value>', '<value/>')).params).to.deep.equal(['']);
    });

    it('reads the empty string forms', () => {
      expect(param('<string/>')).to.equal('');
      expect(param('<string></string>')).to.equal('');
      expect(param('<string>  </string>')).to.equal('  ');
    });

    it('treats whitespace around a typed child as indentation', () => {
      expect(param('\n    <string>x</string>\n  ')).to.equal('x');
      expect(param('\n  <int>5</int>\n')).to.equal(5);
    });

    it('decodes the five predefined entities', () => {
      expect(param('<string>a &amp; b &lt;c&gt; &quot;&apos;</string>')).to.equal('a & b <c> "\'');
    });

    it('decodes numeric character references, including astral ones', () => {
      expect(param('<string>&#60;&#x3C;&#x1D11E;&#233;</string>')).to.equal('<<𝄞é');
      expect(param('x&#x20;y')).to.equal('x y');
    });

    it('reads CDATA literally, without entity decoding', () => {
      expect(param('<string><![CDATA[a&amp;<b>]]></string>')).to.equal('a&amp;<b>');
      expect(param('pre <![CDATA[&lt;]]> post')).to.equal('pre &lt; post');
    });

    it('reads a URL with & in it', () => {
      expect(param('http://example.com/feed?a=1&amp;b=2')).to.equal('http://example.com/feed?a=1&b=2');
    });

    it('reads integers strictly', () => {
      expect(param('<i4> 42 </i4>')).to.equal(42);
      expect(param('<int>+7</int>')).to.equal(7);
      expect(param('<int>-2147483648</int>')).to.equal(-2147483648);
      expect(param('<int>-0</int>')).to.equal(0);
      expect(param('<i8>9007199254740991</i8>')).to.equal(9007199254740991);
      for (const bad of ['<int>12abc</int>', '<int>99999999999</int>', '<i4>2147483648</i4>', '<int>1.0</int>',
        '<int></int>', '<int>0x10</int>', '<int>1e3</int>', '<i8>9007199254740992</i8>']) {
        expect(failure(() => param(bad)), bad).to.match(/^Bad XML-RPC call, invalid (int|i4|i8) value\.$/);
      }
    });

    it('reads doubles', () => {
      expect(param('<double> -1.5 </double>')).to.equal(-1.5);
      expect(param('<double>3</double>')).to.equal(3);
      expect(param('<double>.5</double>')).to.equal(0.5);
      expect(param('<double>1e3</double>')).to.equal(1000);
      for (const bad of ['<double>abc</double>', '<double>NaN</double>', '<double>1e999</double>', '<double></double>']) {
        expect(failure(() => param(bad)), bad).to.equal('Bad XML-RPC call, invalid double value.');
      }
    });

    it('reads booleans, leniently accepting true/false', () => {
      expect(param('<boolean>1</boolean>')).to.equal(true);
      expect(param('<boolean> 0 </boolean>')).to.equal(false);
      expect(param('<boolean>true</boolean>')).to.equal(true);
      expect(param('<boolean>FALSE</boolean>')).to.equal(false);
      expect(failure(() => param('<boolean>2</boolean>'))).to.equal('Bad XML-RPC call, invalid boolean value.');
      expect(failure(() => param('<boolean>yes</boolean>'))).to.equal('Bad XML-RPC call, invalid boolean value.');
    });

    it('reads base64 with embedded whitespace', () => {
      expect(param('<base64>\n  aGVs\n  bG8=\n</base64>')).to.deep.equal(Buffer.from('hello'));
      expect(param('<base64/>')).to.deep.equal(Buffer.alloc(0));
      expect(failure(() => param('<base64>a*b=</base64>'))).to.equal('Bad XML-RPC call, invalid base64 value.');
    });

    it('reads the dateTime forms', () => {
      const t = Date.UTC(2024, 1, 29, 13, 14, 15);
      expect(param('<dateTime.iso8601>20240229T13:14:15</dateTime.iso8601>')).to.deep.equal(new Date(t));
      expect(param('<dateTime.iso8601>2024-02-29T13:14:15</dateTime.iso8601>')).to.deep.equal(new Date(t));
      expect(param('<dateTime.iso8601> 20240229T13:14:15Z </dateTime.iso8601>')).to.deep.equal(new Date(t));
      expect(param('<dateTime.iso8601>20240229T131415</dateTime.iso8601>')).to.deep.equal(new Date(t));
      expect(param('<dateTime.iso8601>2024-02-29T15:14:15+02:00</dateTime.iso8601>')).to.deep.equal(new Date(t));
      expect(param('<dateTime.iso8601>2024-02-29T08:44:15-0430</dateTime.iso8601>')).to.deep.equal(new Date(t));
      expect(param('<dateTime.iso8601>2024-02-29T13:14:15.250Z</dateTime.iso8601>')).to.deep.equal(new Date(t + 250));
      // Years below 100 are not shifted into the 1900s.
      expect((param('<dateTime.iso8601>00050101T00:00:00</dateTime.iso8601>') as Date).toISOString()).to.equal(
        '0005-01-01T00:00:00.000Z',
      );
      for (const bad of ['20230229T00:00:00', '20240101T24:00:00', '20241301T00:00:00', 'yesterday', '',
        '2024-01-01', '20240101T00:00:00+25:00']) {
        expect(failure(() => param(`<dateTime.iso8601>${bad}</dateTime.iso8601>`)), bad).to.equal(
          'Bad XML-RPC call, invalid dateTime.iso8601 value.',
        );
      }
    });

    it('reads <nil/> as the empty string', () => {
      expect(param('<nil/>')).to.equal('');
      expect(param('<ex:nil/>')).to.equal('');
    });

    it('reads nested structs and arrays in order', () => {
      const value = param(`
        <struct>
          <member><name>b</name><value><array><data>
            <value><i4>1</i4></value>
            <value>two</value>
            <value><struct><member><name>x</name><value><boolean>1</boolean></value></member></struct></value>
          </data></array></value></member>
          <member>
            <name>a</name>
            <value>  spaced  </value>
          </member>
        </struct>`);
      expect(value).to.deep.equal({ b: [1, 'two', { x: true }], a: '  spaced  ' });
      expect(Object.keys(value as object)).to.deep.equal(['b', 'a']);
    });

    it('ignores comments between elements', () => {
      expect(param('<!-- c --><int>3</int><!-- d -->')).to.equal(3);
      expect(param('<array><data><!-- c --><value>1</value></data></array>')).to.deep.equal(['1']);
    });

    it('refuses malformed values', () => {
      expect(failure(() => param('<float>1</float>'))).to.equal('Bad XML-RPC call, unknown value type <float>.');
      expect(failure(() => param('text<int>1</int>'))).to.equal('Bad XML-RPC call, unexpected text inside <value>.');
      expect(failure(() => param('<int>1</int><int>2</int>'))).to.equal('Bad XML-RPC call, a <value> must hold a single typed element.');
      expect(failure(() => param('<string><b>x</b></string>'))).to.equal('Bad XML-RPC call, unexpected <b> element inside <string>.');
      expect(failure(() => param('<array><value>1</value></array>'))).to.equal('Bad XML-RPC call, an <array> must hold one <data> element.');
      expect(failure(() => param('<struct><member><name>a</name></member></struct>'))).to.equal(
        'Bad XML-RPC call, a <member> must hold one <name> and one <value>.',
      );
    });
  });

  describe('parsing calls', () => {
    it('reads a pretty-printed call', () => {
      const xml = `<?xml version="1.0" encoding="UTF-8"?>
<methodCall>
  <methodName> rssCloud.hello </methodName>
  <params>
    <param>
      <value>
        <string>x</string>
      </value>
    </param>
    <param><value><int>80</int></value></param>
  </params>
</methodCall>
`;
      expect(parseMethodCall(xml)).to.deep.equal({ methodName: 'rssCloud.hello', params: ['x', 80] });
    });

    it('treats absent or empty <params> as no params', () => {
      expect(parseMethodCall('<methodCall><methodName>m</methodName></methodCall>')).to.deep.equal({ methodName: 'm', params: [] });
      expect(parseMethodCall('<methodCall><methodName>m</methodName><params/></methodCall>').params).to.deep.equal([]);
    });

    it('accepts a byte-order mark and CRLF line ends', () => {
      const xml = '\uFEFF<methodCall>\r\n<methodName>m</methodName><params><param><value>a\r\nb</value></param></params></methodCall>';
      expect(parseMethodCall(xml).params).to.deep.equal(['a\nb']);
    });

    it('accepts whitespace before the XML declaration, as IXR and WordPress servers do (indented heredocs)', () => {
      const call = '\n    <?xml version="1.0"?>\n    <methodCall><methodName>m</methodName><params><param><value>a</value></param></params></methodCall>';
      expect(parseMethodCall(call)).to.deep.equal({ methodName: 'm', params: ['a'] });
      expect(parseMethodCall(`\uFEFF \r\n${call}`).params).to.deep.equal(['a']);
      // A PHP callback that printed a blank line before its answer.
      const answer = '\n<?xml version="1.0"?>\n<methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>';
      expect(parseMethodResponse(answer)).to.deep.equal({ kind: 'value', value: true });
      // Only before a declaration: text before the root is still not XML.
      expect(failure(() => parseMethodCall('x <?xml version="1.0"?><methodCall><methodName>m</methodName></methodCall>'))).to.equal('Bad XML-RPC call, the XML is not well-formed.');
    });

    it('uses the reference server\'s messages for a missing root or methodName', () => {
      const noRoot = 'Bad XML-RPC call, missing "methodCall" element.';
      expect(failure(() => parseMethodCall(''))).to.equal(noRoot);
      expect(failure(() => parseMethodCall('   \n'))).to.equal(noRoot);
      expect(failure(() => parseMethodCall('<?xml version="1.0"?>\n<methodResponse/>'))).to.equal(noRoot);
      const noName = 'Bad XML-RPC call, missing "methodName" element.';
      expect(failure(() => parseMethodCall('<methodCall><params/></methodCall>'))).to.equal(noName);
      expect(failure(() => parseMethodCall('<methodCall/>'))).to.equal(noName);
      expect(failure(() => parseMethodCall('<methodCall><methodName> </methodName></methodCall>'))).to.equal(noName);
    });

    it('refuses XML that is not well-formed', () => {
      const msg = 'Bad XML-RPC call, the XML is not well-formed.';
      for (const bad of [
        'hello',
        '<methodCall><methodName>m</methodName>',
        '<methodCall><methodName>m</methodCall></methodName>',
        '<methodCall><methodName>a & b</methodName></methodCall>',
        '<methodCall><methodName>&nbsp;</methodName></methodCall>',
        '<methodCall><methodName>&#0;</methodName></methodCall>',
        '<methodCall><methodName>&#xD800;</methodName></methodCall>',
        '<methodCall><methodName>&#X3c;</methodName></methodCall>',
        '<methodCall><methodName>m</methodName></methodCall><methodCall/>',
        '<methodCall><methodName>m</methodName></methodCall>trailing',
      ]) {
        expect(failure(() => parseMethodCall(bad)), bad).to.equal(msg);
      }
    });

    it('refuses DOCTYPE and entity declarations, including an entity bomb', () => {
      const msg = 'Bad XML-RPC call, DOCTYPE and entity declarations are not allowed.';
      const bomb = `<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<methodCall><methodName>&lol3;</methodName></methodCall>`;
      expect(failure(() => parseMethodCall(bomb))).to.equal(msg);
      const external = '<!doctype x SYSTEM "file:///etc/passwd"><methodCall><methodName>m</methodName></methodCall>';
      expect(failure(() => parseMethodCall(external))).to.equal(msg);
      expect(failure(() => parseMethodCall('<methodCall><!ENTITY x "y"></methodCall>'))).to.equal(msg);
    });

    it('refuses values nested deeper than maxDepth', () => {
      const nest = (n: number) => '<array><data><value>'.repeat(n) + 'x' + '</value></data></array>'.repeat(n);
      const max = DEFAULT_XMLRPC_LIMITS.maxDepth;
      // The top-level value is depth 1, so max-1 arrays around a leaf is the deepest allowed.
      expect(() => param(nest(max - 1))).not.to.throw();
      expect(failure(() => param(nest(max)))).to.equal('Bad XML-RPC call, the request is too deeply nested.');
      expect(failure(() => param(nest(3000)))).to.equal('Bad XML-RPC call, the request is too deeply nested.');
      // Deep nesting of arbitrary elements is caught before decoding, too.
      const junk = '<x>'.repeat(500) + '</x>'.repeat(500);
      expect(failure(() => parseMethodCall(`<methodCall>${junk}</methodCall>`))).to.equal(
        'Bad XML-RPC call, the request is too deeply nested.',
      );
      expect(failure(() => parseMethodCall(callXml(nest(3)), { maxDepth: 3, maxElements: 100 }))).to.equal(
        'Bad XML-RPC call, the request is too deeply nested.',
      );
    });

    it('refuses documents with too many elements', () => {
      const items = (n: number) => `<array><data>${'<value><i4>1</i4></value>'.repeat(n)}</data></array>`;
      expect((param(items(4000)) as unknown[]).length).to.equal(4000);
      expect(failure(() => param(items(6000)))).to.equal('Bad XML-RPC call, the request has too many elements.');
      expect(failure(() => parseMethodCall(callXml(items(10)), { maxDepth: 32, maxElements: 20 }))).to.equal(
        'Bad XML-RPC call, the request has too many elements.',
      );
    });

    it('refuses a document with far more tags than the element limit allows before parsing it', () => {
      // Ill-formed too: the validator would say so, but only after reading all of it.
      const flood = `<methodCall>${'<a>'.repeat(30_000)}`;
      expect(failure(() => parseMethodCall(flood))).to.equal('Bad XML-RPC call, the request has too many elements.');
      expect(failure(() => parseMethodResponse(`<methodResponse>${'<a/>'.repeat(30_000)}</methodResponse>`))).to.match(/has too many elements/);
    });

    it('refuses documents over maxBytes', () => {
      const xml = callXml('x'.repeat(100));
      expect(() => parseMethodCall(xml, { maxDepth: 32, maxElements: 100, maxBytes: xml.length })).not.to.throw();
      expect(failure(() => parseMethodCall(xml, { maxDepth: 32, maxElements: 100, maxBytes: xml.length - 1 }))).to.equal(
        'Bad XML-RPC call, the request is too large.',
      );
    });
  });

  describe('parsing responses', () => {
    it('reads a value', () => {
      const xml = `${DECL}<methodResponse>\n <params>\n  <param>\n   <value><boolean>1</boolean></value>\n  </param>\n </params>\n</methodResponse>`;
      expect(parseMethodResponse(xml)).to.deep.equal({ kind: 'value', value: true });
    });

    it('reads a fault with i4 code and untyped string', () => {
      const xml = `${DECL}<methodResponse><fault><value><struct>
        <member><name>faultString</name><value>Nope</value></member>
        <member><name>faultCode</name><value><i4>7</i4></value></member>
      </struct></value></fault></methodResponse>`;
      expect(parseMethodResponse(xml)).to.deep.equal({ kind: 'fault', code: 7, message: 'Nope' });
    });

    it('refuses anything else', () => {
      for (const [bad, msg] of [
        ['', 'missing "methodResponse" element.'],
        ['<methodCall/>', 'missing "methodResponse" element.'],
        ['<methodResponse/>', 'a <methodResponse> must hold <params> or <fault>.'],
        ['<methodResponse><params/></methodResponse>', 'a response must carry exactly one <param>.'],
        ['<methodResponse><other/></methodResponse>', 'a <methodResponse> must hold <params> or <fault>.'],
        ['<methodResponse><fault><value>x</value></fault></methodResponse>',
          'a fault must be a struct with an int faultCode and a string faultString.'],
        ['<methodResponse><params>', 'the XML is not well-formed.'],
        ['<!DOCTYPE x><methodResponse/>', 'DOCTYPE and entity declarations are not allowed.'],
      ] as const) {
        expect(failure(() => parseMethodResponse(bad)), bad).to.equal(`Bad XML-RPC response, ${msg}`);
      }
    });
  });

  // Interoperability with an independent implementation: the `xmlrpc` npm package.
  describe('interop with the xmlrpc package', () => {
    const servers: http.Server[] = [];

    async function listen(server: http.Server): Promise<number> {
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return (server.address() as AddressInfo).port;
    }

    function readBody(req: http.IncomingMessage): Promise<string> {
      return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        req.on('error', reject);
      });
    }

    function clientCall(port: number, method: string, params: unknown[]): Promise<unknown> {
      const client = xmlrpc.createClient({ host: '127.0.0.1', port, path: '/RPC2' });
      return new Promise((resolve, reject) => {
        client.methodCall(method, params, (err, value) => (err ? reject(err) : resolve(value)));
      });
    }

    before(() => {
      // The package writes local time without a zone by default; make it write UTC with 'Z'.
      xmlrpc.dateFormatter.setOpts({ local: false });
    });

    after(async () => {
      // Back to the package defaults (its typings require the argument).
      xmlrpc.dateFormatter.setOpts({ colons: true, hyphens: false, local: true, ms: false, offset: false });
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    });

    describe('their client → our parseMethodCall', () => {
      let port = 0;
      let received: unknown;

      before(async () => {
        port = await listen(
          http.createServer((req, res) => {
            void readBody(req).then((body) => {
              try {
                received = parseMethodCall(body);
                res.writeHead(200, { 'Content-Type': 'text/xml' }).end(buildMethodResponse('ok'));
              } catch (err) {
                received = err;
                res.writeHead(200, { 'Content-Type': 'text/xml' }).end(buildFault(1, (err as Error).message));
              }
            });
          }),
        );
      });

      it('decodes strings, ints, doubles, booleans, dates, base64, arrays, structs, nil', async () => {
        const when = new Date(Date.UTC(2025, 5, 30, 12, 0, 1));
        const params = [
          'plain', '', 'a & b < c > d', 'http://feed.test/?a=1&b=2', 'ends with ]]> inside',
          '  spaced\n  lines  ', 'héllo ☃', 42, -1, 1.25, true, false, when, Buffer.from('bytes!'),
          [1, 'two', [false]], { url: 'http://x.test/', port: 80, nested: { list: ['a'] } },
        ];
        expect(await clientCall(port, 'rssCloud.pleaseNotify', [...params, null])).to.equal('ok');
        expect(received).to.deep.equal({ methodName: 'rssCloud.pleaseNotify', params: [...params, ''] });
      });

      it('keeps struct member order as sent', async () => {
        await clientCall(port, 'm', [{ z: 1, a: 2, m: 3 }]);
        const call = received as { params: object[] };
        expect(Object.keys(call.params[0] as object)).to.deep.equal(['z', 'a', 'm']);
      });
    });

    describe('our builders → their client', () => {
      let port = 0;
      let nextResponse = '';

      before(async () => {
        port = await listen(
          http.createServer((req, res) => {
            void readBody(req).then(() => res.writeHead(200, { 'Content-Type': 'text/xml' }).end(nextResponse));
          }),
        );
      });

      it('decodes our methodResponse values', async () => {
        const when = new Date(Date.UTC(2025, 0, 2, 3, 4, 5));
        const value = {
          s: 'a & b <c> "d"', empty: '', n: 7, big: 2 ** 40, d: 2.5, t: true, f: false,
          bin: Buffer.from([1, 2, 3]), list: ['x', 1, [true]], nested: { k: 'v' },
        };
        nextResponse = buildMethodResponse({ ...value, when });
        const got = (await clientCall(port, 'm', [])) as Record<string, unknown>;
        const { when: gotWhen, ...rest } = got;
        expect(rest).to.deep.equal(value);
        // The package reads a zone-less time as local time; we write UTC. Allow for that.
        const d = gotWhen as Date;
        expect(d.getTime()).to.equal(when.getTime() + d.getTimezoneOffset() * 60000);
      });

      it('decodes our faults', async () => {
        nextResponse = buildFault(5, 'Can\'t <notify> & stuff');
        const err = await clientCall(port, 'm', []).then(
          () => expect.fail('expected a fault'),
          (e: unknown) => e as { faultCode: number; faultString: string },
        );
        expect(err.faultCode).to.equal(5);
        expect(err.faultString).to.equal('Can\'t <notify> & stuff');
      });
    });

    describe('our buildMethodCall → their server → our parseMethodResponse', () => {
      let port = 0;
      let server: xmlrpc.Server;
      const seen: unknown[][] = [];

      before(async () => {
        // The package passes the port straight to http.Server#listen, so 0 works.
        await new Promise<void>((resolve) => {
          server = xmlrpc.createServer({ host: '127.0.0.1', port: 0 }, () => resolve());
        });
        servers.push(server.httpServer as http.Server);
        port = (server.httpServer.address() as AddressInfo).port;
        server.on('echo', (_err: unknown, params: unknown[], reply: (e: unknown, v: unknown) => void) => {
          seen.push(params);
          reply(null, params);
        });
        server.on('fail', (_err: unknown, _params: unknown[], reply: (e: unknown, v: unknown) => void) => {
          reply({ faultCode: 9, faultString: 'no <way> & never' }, null);
        });
      });

      async function post(body: string): Promise<string> {
        const res = await fetch(`http://127.0.0.1:${port}/RPC2`, {
          method: 'POST',
          headers: { 'Content-Type': 'text/xml' },
          body,
        });
        return res.text();
      }

      it('their server decodes our typed call and we decode its response', async () => {
        const params: XmlRpcValue[] = [
          'a & b <c>', '', 12, -3.5, true, Buffer.from('zz'), ['x', { y: [1, 2] }], { url: 'http://h.test/?a&b', n: 0 },
        ];
        const response = await post(buildMethodCall('echo', params));
        expect(seen.at(-1)).to.deep.equal(params);
        expect(parseMethodResponse(response)).to.deep.equal({ kind: 'value', value: params });
      });

      it('their server decodes our untyped-string notification', async () => {
        const url = 'http://feed.test/rss.xml?a=1&b=2';
        await post(buildMethodCall('echo', [url], { untypedStrings: true }));
        expect(seen.at(-1)).to.deep.equal([url]);
      });

      it('their server decodes our dates', async () => {
        const when = new Date(Date.UTC(2030, 6, 4, 1, 2, 3));
        const response = await post(buildMethodCall('echo', [when]));
        const got = (seen.at(-1) as Date[])[0] as Date;
        // Zone-less times are local to the package (see above); it echoes them back with 'Z'.
        expect(got.getTime()).to.equal(when.getTime() + got.getTimezoneOffset() * 60000);
        expect(parseMethodResponse(response)).to.deep.equal({ kind: 'value', value: [got] });
      });

      it('we decode its faults', async () => {
        expect(parseMethodResponse(await post(buildMethodCall('fail', [])))).to.deep.equal({
          kind: 'fault',
          code: 9,
          message: 'no <way> & never',
        });
      });
    });
  });
});
