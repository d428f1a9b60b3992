import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidConfig } from '../../interfaces/errors.js';
import { buildVerifierConfig, loadVerifierConfig, VERIFIER_ENV_VARIABLES, VerifierConfig, verifierSeverityPolicy } from '../../lib/verifier/verifier-config.js';
import { REPO_ROOT } from '../helpers/paths.js';

function configError(run: () => unknown): InvalidConfig {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(InvalidConfig);
    return error as InvalidConfig;
  }
  throw new Error('expected InvalidConfig');
}

describe('verifier config', function () {
  let dir: string;

  beforeEach(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-verifier-config-'));
  });

  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it("has Keylime's [verifier] defaults and is frozen", function () {
    const config = buildVerifierConfig({ dataDir: '/d' });
    expect(config).to.include({
      host: '127.0.0.1',
      port: 8881,
      verifierId: 'default',
      quoteInterval: 2,
      retryInterval: 2,
      maxRetries: 5,
      exponentialBackoff: true,
      requestTimeout: 60,
      measuredBootPolicy: 'example',
      measuredBootEvaluate: 'once',
      failOnTomtou: false,
    });
    expect(Object.isFrozen(config)).to.equal(true);
    expect(verifierSeverityPolicy(config).maxLevel).to.equal(6);
  });

  it('layers defaults < file < IRONLIME_VERIFIER_* < overrides', function () {
    const file = path.join(dir, 'verifier.json');
    writeFileSync(file, JSON.stringify({ dataDir: '/from-file', port: 1000, quoteInterval: 5, maxRetries: 9 }));
    const config = loadVerifierConfig({
      file,
      env: {
        IRONLIME_VERIFIER_PORT: '2000',
        IRONLIME_VERIFIER_QUOTE_INTERVAL: '0.5',
        IRONLIME_VERIFIER_EXPONENTIAL_BACKOFF: 'false',
        IRONLIME_VERIFIER_SEVERITY_LABELS: 'low, high',
        IRONLIME_VERIFIER_SEVERITY_POLICY: '[{"event_id": "ima\\\\..*", "severity_label": "low"}, {"event_id": ".*", "severity_label": "high"}]',
        IRONLIME_VERIFIER_HOST: '',
      },
      overrides: { port: 3000, dataDir: undefined },
    });
    expect(config).to.include({ dataDir: '/from-file', port: 3000, quoteInterval: 0.5, maxRetries: 9, exponentialBackoff: false, host: '127.0.0.1' });
    const severity = verifierSeverityPolicy(config);
    expect(severity.labels).to.deep.equal(['low', 'high']);
    expect(severity.rules.map((rule) => rule.level)).to.deep.equal([0, 1]);
  });

  it('refuses bad values naming the field or variable', function () {
    expect(configError(() => buildVerifierConfig({})).message).to.equal('invalid config: verifier.dataDir: should not be empty');
    expect(configError(() => buildVerifierConfig({ dataDir: '/d', port: 70000 })).message).to.equal(
      'invalid config: verifier.port: must not be greater than 65535',
    );
    expect(configError(() => buildVerifierConfig({ dataDir: '/d', quoteInterval: -1 })).message).to.equal(
      'invalid config: verifier.quoteInterval: must not be less than 0',
    );
    expect(configError(() => buildVerifierConfig({ dataDir: '/d', colour: 'red' })).message).to.equal('invalid config: verifier.colour: unknown field');
    expect(configError(() => buildVerifierConfig({ dataDir: '/d', verifierId: 'a b' })).message).to.equal(
      'invalid config: verifier.verifierId: must be 1 to 80 letters, digits, "_", "." or "-"',
    );
    expect(configError(() => buildVerifierConfig({ dataDir: '/d', measuredBootPolicy: 'custom' })).message).to.equal(
      'invalid config: verifier.measuredBootPolicy: must be example or accept-all',
    );
    expect(configError(() => buildVerifierConfig({ dataDir: '/d', severityPolicy: [{ event_id: '.*', severity_label: 'nope' }] })).field).to.equal('severity_policy[0].severity_label');
    expect(configError(() => buildVerifierConfig({ dataDir: '/d', severityPolicy: ['x'] })).message).to.equal(
      'invalid config: verifier.severityPolicy[0]: must be {event_id: <regex>, severity_label: <label>}',
    );
    expect(configError(() => loadVerifierConfig({ env: { IRONLIME_VERIFIER_DATA_DIR: '/d', IRONLIME_VERIFIER_MAX_RETRIES: 'many' } })).message).to.equal(
      'invalid config: IRONLIME_VERIFIER_MAX_RETRIES: must be a non-negative number, got "many"',
    );
    expect(configError(() => loadVerifierConfig({ env: { IRONLIME_VERIFIER_DATA_DIR: '/d', IRONLIME_VERIFIER_FAIL_ON_TOMTOU: 'yes' } })).message).to.equal(
      'invalid config: IRONLIME_VERIFIER_FAIL_ON_TOMTOU: must be true or false, got "yes"',
    );
  });

  it('docs/verifier.md documents every field with its variable, and no others', function () {
    const text = readFileSync(path.join(REPO_ROOT, 'docs', 'verifier.md'), 'utf8');
    const section = text.slice(text.indexOf('## Settings'), text.indexOf('## Routes'));
    const rows = [...section.matchAll(/^\| `([A-Za-z]+)` \| `(IRONLIME_VERIFIER_[A-Z_]+)` \|/gm)].map((m) => [m[1], m[2]]);
    const fields = Object.keys(new VerifierConfig()).concat(['dataDir', 'databaseUrl', 'instanceId', 'severityLabels', 'severityPolicy', 'staleAfter']);
    expect(rows.map(([field]) => field).sort()).to.deep.equal([...new Set(fields)].sort());
    expect(rows.map(([field, variable]) => `${String(field)}=${String(variable)}`).sort()).to.deep.equal(
      VERIFIER_ENV_VARIABLES.map((v) => `${v.field}=${v.name}`).sort(),
    );
  });
});
