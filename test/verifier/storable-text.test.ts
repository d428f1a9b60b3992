import { expect } from 'chai';
import { storableJson, storableText } from '../../lib/verifier/storable-text.js';

describe('storable text (NUL and lone surrogates escaped for PostgreSQL)', function () {
  it('leaves ordinary text, valid surrogate pairs and backslashes unchanged', function () {
    for (const text of ['', '/usr/bin/ls', 'ünïcödé', 'emoji 😀 pair', 'C:\\path\\u0041']) {
      expect(storableText(text)).to.equal(text);
    }
  });

  it('escapes NUL and unpaired surrogates as visible \\uXXXX, keeping everything else', function () {
    expect(storableText('root=/dev/sda1 ro\u0000')).to.equal('root=/dev/sda1 ro\\u0000');
    expect(storableText('a\ud800b')).to.equal('a\\ud800b');
    expect(storableText('\udfffx\ud83d')).to.equal('\\udfffx\\ud83d');
    expect(storableText('😀\u0000😀')).to.equal('😀\\u00000😀'.replace('00000', '0000'));
  });

  it('makes nested JSON (values and keys) storable and leaves numbers, booleans and null alone', function () {
    const text = storableJson([{ context: { message: 'cmdline\u0000', ['k\u0000']: 1, list: ['\ud800', true, null, 2.5] } }]);
    expect(JSON.parse(text)).to.deep.equal([{ context: { message: 'cmdline\\u0000', 'k\\u0000': 1, list: ['\\ud800', true, null, 2.5] } }]);
    expect(text).not.to.match(/(^|[^\\])\\u(0000|d800)/);
  });
});
