import { randomBytes, randomInt } from 'node:crypto';
import { expect } from 'chai';
import { Http1ParseError, Http1ResponseParser, type Http1Response } from '../../lib/http/http1-response-parser.js';

/** Feeds `text` to a fresh parser cut into pieces of `step` bytes; returns the response once complete. */
function parse(text: string, step = text.length, max = 1024 * 1024): { response: Http1Response | undefined; parser: Http1ResponseParser } {
  const parser = new Http1ResponseParser(max);
  const bytes = Buffer.from(text, 'latin1');
  let response: Http1Response | undefined;
  for (let at = 0; at < bytes.length; at += step) {
    response = parser.feed(bytes.subarray(at, at + step)) ?? response;
  }
  return { response, parser };
}

describe('http: HTTP/1.1 response parser of the thin client', function () {
  it('reads a Content-Length body, whatever the pieces it arrives in', function () {
    const text = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"code":20}';
    for (const step of [1, 2, 7, 40, text.length]) {
      const { response, parser } = parse(text, step);
      expect(response, `step ${step}`).to.deep.include({ status: 200, statusText: 'OK', reusable: true });
      expect(response?.body.toString()).to.equal('{"code":20}');
      expect(parser.excess).to.equal(false);
    }
  });

  it('reads a chunked body with extensions and trailers, byte by byte too, and skips a 100 Continue', function () {
    const text = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\nab\r\n\r\n3\r\ncde\r\n0\r\nX-Trailer: 1\r\n\r\n';
    for (const step of [1, 3, text.length]) {
      const { response } = parse(text, step);
      expect(response, `step ${step}`).to.deep.include({ status: 404, statusText: 'Not Found', reusable: true });
      expect(response?.body.toString('latin1')).to.equal('ab\r\ncde');
    }
  });

  it('takes a 204 and a zero length as empty, and a body without framing as ending with the connection', function () {
    expect(parse('HTTP/1.1 204 No Content\r\n\r\n').response).to.deep.include({ status: 204, reusable: true });
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n').response?.body.length).to.equal(0);
    const { response, parser } = parse('HTTP/1.0 200 OK\r\n\r\n{"a":1}');
    expect(response).to.equal(undefined);
    expect(parser.end()).to.deep.include({ status: 200, reusable: false });
    expect(parser.end().body.toString()).to.equal('{"a":1}');
  });

  it('marks a response with Connection: close, or with bytes after it, as not reusable', function () {
    expect(parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}').response?.reusable).to.equal(false);
    const { response, parser } = parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK');
    expect(response?.body.toString()).to.equal('{}');
    expect(parser.excess).to.equal(true);
  });

  it('refuses what could be read two ways, and what is not HTTP, too large or cut short', function () {
    const refused: [string, RegExp][] = [
      ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n', /both Content-Length and Transfer-Encoding/],
      ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n', /invalid Content-Length/],
      ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /invalid Content-Length/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', /unsupported Transfer-Encoding/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /malformed chunk size/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n', /malformed chunk/],
      ['HTTP/1.1 200 OK\r\nno colon\r\n\r\n', /malformed header line/],
      ['SSH-2.0-OpenSSH\r\n\r\n', /not an HTTP\/1.x status line/],
      ['HTTP/1.1 101 Switching Protocols\r\n\r\n', /unexpected protocol switch/],
      ['HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n', /larger than the configured maximum/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n', /larger than the configured maximum/],
      [`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(17 * 1024)}`, /head larger than 16 KiB/],
    ];
    for (const [text, message] of refused) {
      expect(() => parse(text, text.length, 1024), text.slice(0, 60)).to.throw(Http1ParseError, message);
    }
    const cut = parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}').parser;
    expect(() => cut.end()).to.throw(Http1ParseError, /before the response body ended/);
    expect(() => parse('HTTP/1.1 200').parser.end()).to.throw(Http1ParseError, /before the response head/);
  });
  it('answers random bytes, and random bytes after a valid head, with a response, a wait or Http1ParseError, never another error', function () {
    const heads = ['', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n'];
    for (let round = 0; round < 300; round += 1) {
      const head = heads[round % heads.length] as string;
      const bytes = Buffer.concat([Buffer.from(head, 'latin1'), randomBytes(randomInt(1, 40_000))]);
      const parser = new Http1ResponseParser(16 * 1024);
      try {
        for (let at = 0; at < bytes.length; ) {
          const step = randomInt(1, 4096);
          parser.feed(bytes.subarray(at, at + step));
          at += step;
        }
        parser.end();
      } catch (error) {
        expect(error, `round ${round}`).to.be.instanceOf(Http1ParseError);
      }
    }
  });
});
