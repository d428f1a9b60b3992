import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { ERROR_CODES } from '../../interfaces/errors.js';
import { REPO_ROOT } from '../helpers/paths.js';

/** The rows `| ERR_X | status | meaning |` of the table in docs/errors.md. */
function documentedCodes(): Map<string, number> {
  const text = readFileSync(path.join(REPO_ROOT, 'docs', 'errors.md'), 'utf8');
  const rows = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^\|\s*`?(ERR_[A-Z0-9_]+)`?\s*\|\s*(\d{3})\s*\|\s*(.*?)\s*\|\s*$/.exec(line);
    if (match !== null) {
      expect(rows.has(match[1] as string), `${match[1]} is documented twice`).to.equal(false);
      expect(match[3], `${match[1]} has no meaning`).to.not.equal('');
      rows.set(match[1] as string, Number(match[2]));
    }
  }
  return rows;
}

describe('docs/errors.md', function () {
  it('documents every code of ERROR_CODES with its HTTP status, and nothing else', function () {
    const documented = documentedCodes();
    const inCode = Object.entries(ERROR_CODES);
    expect(documented.size).to.be.greaterThan(0);
    for (const [code, status] of inCode) {
      expect(documented.get(code), `${code} is missing from docs/errors.md or has another status`).to.equal(status);
    }
    const known = new Set(Object.keys(ERROR_CODES));
    const extra = [...documented.keys()].filter((code) => !known.has(code));
    expect(extra, 'documented but not in ERROR_CODES').to.deep.equal([]);
  });
});
