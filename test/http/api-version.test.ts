import { expect } from 'chai';
import {
  agentApiVersionPolicy,
  agentVersionResults,
  checkApiVersionPolicy,
  negotiateApiVersion,
  serverApiVersionPolicy,
  serverVersionResults,
  unsupportedVersionSegment,
  versionPrefixes,
} from '../../lib/http/api-version.js';
import { InvalidConfig } from '../../interfaces/errors.js';

describe('http: API versions', () => {
  const server = serverApiVersionPolicy();
  const agent = agentApiVersionPolicy();

  it('registers a server route under every version plus the major aliases', () => {
    expect(versionPrefixes(server).map((p) => `${p.prefix}=${p.version}`)).to.deep.equal([
      '/v1.0=1.0', '/v2.0=2.0', '/v2.1=2.1', '/v2.2=2.2', '/v2.3=2.3', '/v2.4=2.4', '/v2.5=2.5', '/v2.6=2.6', '/v1=1.0', '/v2=2.6',
    ]);
  });

  it('limits a route to its version range; an alias follows only when its target is in range', () => {
    expect(versionPrefixes(server, '2.4').map((p) => p.prefix)).to.deep.equal(['/v2.4', '/v2.5', '/v2.6', '/v2']);
    expect(versionPrefixes(server, undefined, '2.1').map((p) => p.prefix)).to.deep.equal(['/v1.0', '/v2.0', '/v2.1', '/v1']);
    expect(versionPrefixes(agent, '2.2').map((p) => p.prefix)).to.deep.equal(['/v2.2', '/v2.3', '/v2.4', '/v2.5', '/v2.6']);
  });

  it('names the unsupported version segment of an unmatched URL, and nothing for other URLs', () => {
    expect(unsupportedVersionSegment(server, '/v3.0/agents')).to.equal('v3.0');
    expect(unsupportedVersionSegment(server, '/v9?x=1')).to.equal('v9');
    expect(unsupportedVersionSegment(server, '/v2.6/unknown')).to.equal(undefined);
    expect(unsupportedVersionSegment(server, '/v2/unknown')).to.equal(undefined);
    expect(unsupportedVersionSegment(agent, '/v2/agent/info')).to.equal('v2');
    expect(unsupportedVersionSegment(agent, '/version2')).to.equal(undefined);
    expect(unsupportedVersionSegment(agent, '/nothing')).to.equal(undefined);
  });

  it('uses each implementation\'s status text', () => {
    expect(server.unsupportedStatus('v3.0')).to.equal('API Version not supported');
    expect(agent.unsupportedStatus('v1.0')).to.equal('API version not supported: v1.0');
  });

  it('negotiates the highest common version, numerically', () => {
    expect(negotiateApiVersion(['2.1', '2.10', '2.2'], ['2.2', '2.10'])).to.equal('2.10');
    expect(negotiateApiVersion(['2.0', '2.6', '3.0'], agent.supported)).to.equal('2.6');
    expect(negotiateApiVersion(['1.0'], agent.supported)).to.equal(undefined);
  });

  it('answers /version in the registrar/verifier and the agent shapes', () => {
    expect(serverVersionResults(server)).to.deep.equal({ current_version: '2.6', supported_versions: [...server.supported] });
    expect(agentVersionResults(agent)).to.deep.equal({ supported_version: '2.6', supported_versions: ['2.1', '2.2', '2.3', '2.4', '2.5', '2.6'] });
  });

  it('refuses empty, malformed and duplicated version lists at startup', () => {
    for (const [supported, message] of [
      [[], 'invalid config: apiVersions.supported: must name at least one version'],
      [['2.6', 'v2.7'], 'invalid config: apiVersions.supported: "v2.7" is not <major>.<minor>'],
      [['2.6', '2.6'], 'invalid config: apiVersions.supported: lists a version twice'],
    ] as const) {
      expect(() => checkApiVersionPolicy(serverApiVersionPolicy(supported)))
        .to.throw(InvalidConfig, message)
        .with.property('code', 'ERR_INVALID_CONFIG');
    }
  });
});
