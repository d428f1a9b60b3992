import { expect } from 'chai';
import { analyseRoundTiming, type RoundRecord } from '../../lib/fleet/round-timing.js';
import { timingPlotSvg } from '../../lib/fleet/timing-plot.js';
import { TerminalProgress } from '../../lib/cli/terminal-progress.js';

const FROM = 1_000_000;

/** Two agents, one round a second each, 30 ms late every fifth round; agent b tampered at +5.5 s. */
function rounds(): RoundRecord[] {
  const list: RoundRecord[] = [];
  for (const agentId of ['a', 'b']) {
    for (let i = 0; i < 10; i += 1) {
      const failed = agentId === 'b' && i >= 6;
      list.push({ agentId, verdictAt: FROM + i * 1000 + 50, outcome: failed ? 'fail' : 'pass', nonce: `${agentId}${i}`, eventIds: failed ? ['ima.validation.ima-ng.not_in_allowlist'] : [] });
    }
  }
  return list;
}

describe('benchmark timing plot and terminal progress', () => {
  const report = analyseRoundTiming({
    rounds: rounds(),
    // Round i is requested 950 ms after round i-1's verdict (due at 1000 ms), or 30 ms late every fifth.
    requestTime: (_agent, nonce) => FROM + (Number(nonce.slice(1)) - 1) * 1000 + 50 + 950 + (Number(nonce.slice(1)) % 5 === 0 ? 80 : 0),
    quoteIntervalSeconds: 0.95,
    from: FROM,
    to: FROM + 10_000,
    tampered: new Map([['b', FROM + 5500]]),
    expectedEvent: 'ima.validation.ima-ng.not_in_allowlist',
  });

  it('keeps every timed round and detection as a sample with its time', () => {
    expect(report.startDelays).to.have.length(report.timedRounds);
    expect(report.startDelays.every((sample) => sample.at > FROM)).to.equal(true);
    expect(report.detections).to.deep.equal([{ at: FROM + 6050, ms: 550 }]);
  });

  it('draws both panels as SVG: one point per sample, the late line, escaped title, same bytes every time', () => {
    const svg = timingPlotSvg(report, { title: '2 agents <test>', from: FROM, to: FROM + 10_000, lateMs: 95 });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).to.equal(true);
    expect(svg.trimEnd().endsWith('</svg>')).to.equal(true);
    expect(svg.match(/<circle /g)).to.have.length(report.startDelays.length + report.detections.length);
    expect(svg).to.include('2 agents &lt;test&gt;').and.to.include('late above 95 ms').and.to.include('10 s');
    expect(timingPlotSvg(report, { title: '2 agents <test>', from: FROM, to: FROM + 10_000, lateMs: 95 })).to.equal(svg);
    const empty = timingPlotSvg({ ...report, startDelays: [], detections: [] }, { title: 'none', from: FROM, to: FROM + 1000 });
    expect(empty.match(/no samples/g)).to.have.length(2);
  });

  it('draws a long window (200,000 samples) without running out of stack', () => {
    const startDelays = Array.from({ length: 200_000 }, (_, i) => ({ at: FROM + i, ms: (i % 300) - 20 }));
    const svg = timingPlotSvg({ ...report, startDelays }, { title: 'long', from: FROM, to: FROM + 200_000, lateMs: 200 });
    expect(svg).to.include('200000 sample(s)').and.to.include('>-20<');
  });

  it('terminal progress draws in place on a TTY, throttled, and writes nothing elsewhere', () => {
    const written: string[] = [];
    let clock = 0;
    const tty = { isTTY: true, columns: 120, write: (text: string) => written.push(text) > 0 };
    const progress = new TerminalProgress('audit export: records', tty, () => clock);
    progress.update(1, 100);
    clock = 50;
    progress.update(2, 100);
    clock = 200;
    progress.update(50, 100);
    progress.update(100, 100);
    progress.finish();
    expect(written).to.have.length(4);
    expect(written[0]).to.match(/^\r\x1b\[2Kaudit export: records {2}\[-+\] {2}1\/100 {2}1%/);
    expect(written[1]).to.include('[############------------]  50/100  50%');
    expect(written[2]).to.include('100/100  100%');
    expect(written[3]).to.equal('\r\x1b[2K');
    expect(written.every((text) => text.length <= 119 + 5)).to.equal(true);

    const piped: string[] = [];
    const quiet = new TerminalProgress('x', { isTTY: false, write: (text: string) => piped.push(text) > 0 });
    quiet.update(1, 2);
    quiet.update(2, 2);
    quiet.finish();
    expect(piped).to.deep.equal([]);
  });
});
