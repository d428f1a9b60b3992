import { expect } from 'chai';
import { storableJson, storableText } from '../../lib/db/storable-text.js';

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

  it('writes for any value what a replacer making every string and key storable writes (the plain text when nothing needs it)', function () {
    const reference = (value: unknown): string =>
      JSON.stringify(value, (_key, item: unknown) => {
        if (typeof item === 'string') return storableText(item);
        if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
          return Object.fromEntries(Object.entries(item as Record<string, unknown>).map(([key, inner]) => [storableText(key), inner]));
        }
        return item;
      });
    const values: unknown[] = [
      { choice: { pcrs: [0, 1, 10], key: { public: 'AAEACw==', raw: { size: 2048 } } }, at: new Date(0), none: null, flag: false },
      ['plain', 'C:\\path\\u0041', 'six characters: \\u0000', 'a pair 😀', 'controls \u0001\u001f\u007f'],
      { message: 'cmdline\u0000' },
      { ['key\ud800']: 'value' },
      { nested: [{ deep: ['\udfff'] }] },
      'top\ud83d',
      '\\\u0000',
      42,
    ];
    for (const value of values) {
      expect(storableJson(value), JSON.stringify(value)).to.equal(reference(value));
    }
  });
});
