import { expect } from 'chai';
import { checkMeasuredBoot } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import * as ev from '../../lib/mb/internal/event-types.js';
import type { MbRefstate } from '../../lib/mb/mb-refstate.js';
import { CraftedLog, variableData, withVariableData } from './crafted-log.js';
import { selfQuote, vectorBytes } from './mb-vectors.js';

/**
 * A root user on a node can extend PCRs 0-15 at runtime (locality 0) and rewrite the log it sends;
 * an event's type is not extended into its PCR. These logs are real boots edited that way and quoted
 * by their own replay, as the node's TPM would quote them: the replay matches, so only the policy
 * stands between them and a pass.
 */

const secureBoot = new CraftedLog(Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot')));
const refstate = createRefstate(secureBoot.parsed);

function check(log: Buffer, ref: MbRefstate = refstate) {
  const result = checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate: ref });
  expect(result.replay?.ok, 'the edited log replays to what the TPM would quote').to.equal(true);
  return { passed: result.passed, reasons: result.failures.map((f) => `${String(f.context.component)}: ${String(f.context.reason)}`) };
}

/** The separator event of `pcr`. */
function separatorIndex(crafted: CraftedLog, pcr: number): number {
  return crafted.parsed.events.findIndex((e) => e.pcrIndex === pcr && e.untrustedType === ev.EV_SEPARATOR);
}

/** The last PCR 0 firmware blob event. */
function lastBlobIndex(crafted: CraftedLog): number {
  const blobs = crafted.parsed.events.flatMap((e, i) => (e.pcrIndex === 0 && e.untrustedType === ev.EV_EFI_PLATFORM_FIRMWARE_BLOB ? [i] : []));
  const last = blobs[blobs.length - 1];
  if (last === undefined) {
    throw new Error('no firmware blob in PCR 0');
  }
  return last;
}

describe('mb policy: events relabelled or extended at runtime do not pass', () => {
  const sb = secureBoot.variableIndex('SecureBoot');
  const sbOn = Buffer.from(secureBoot.event(sb).untrustedData);
  const sbOff = withVariableData(secureBoot.event(sb), Buffer.from([0]));

  it('the real boot passes and the same boot with Secure Boot off fails (controls)', () => {
    expect(check(secureBoot.edit(sb, secureBoot.relabel(sb, ev.EV_EFI_VARIABLE_DRIVER_CONFIG))).passed).to.equal(true);
    expect(check(secureBoot.edit(sb, secureBoot.encode(7, ev.EV_EFI_VARIABLE_DRIVER_CONFIG, sbOff))).reasons).to.deep.equal([
      'secure_boot: Secure Boot is disabled, the refstate expects it enabled',
    ]);
  });

  it('Secure Boot off: SecureBoot=0 relabelled EV_EFI_VARIABLE_AUTHORITY and SecureBoot=1 extended at runtime', () => {
    const log = secureBoot.edit(sb, secureBoot.encode(7, ev.EV_EFI_VARIABLE_AUTHORITY, sbOff), [secureBoot.encode(7, ev.EV_EFI_VARIABLE_DRIVER_CONFIG, sbOn)]);
    const { passed, reasons } = check(log);
    expect(passed).to.equal(false);
    expect(reasons).to.include('secure_boot: the SecureBoot variable is measured 2 times');
    expect(reasons.some((r) => /EV_EFI_VARIABLE_AUTHORITY measures the Secure Boot configuration variable .*:SecureBoot$/.test(r)), reasons.join('\n')).to.equal(true);
    expect(reasons.some((r) => /EV_EFI_VARIABLE_DRIVER_CONFIG after the PCR 7 separator$/.test(r)), reasons.join('\n')).to.equal(true);
  });

  it('Secure Boot off: the PCR 7 separator relabelled too, and SecureBoot=1 and a new separator extended at runtime', () => {
    const sep = separatorIndex(secureBoot, 7);
    const relabelled = new CraftedLog(secureBoot.edit(sep, secureBoot.relabel(sep, ev.EV_EFI_VARIABLE_AUTHORITY)));
    const log = relabelled.edit(sb, relabelled.encode(7, ev.EV_EFI_VARIABLE_AUTHORITY, sbOff), [
      relabelled.encode(7, ev.EV_EFI_VARIABLE_DRIVER_CONFIG, sbOn),
      relabelled.relabel(sep, ev.EV_SEPARATOR),
    ]);
    const { passed, reasons } = check(log);
    expect(passed).to.equal(false);
    expect(reasons).to.include('secure_boot: the SecureBoot variable is measured 2 times');
    expect(reasons.some((r) => /a second separator in PCR 7$/.test(r)), reasons.join('\n')).to.equal(true);
  });

  it('a db relabelled EV_EFI_VARIABLE_AUTHORITY is still checked as db', () => {
    const db = secureBoot.variableIndex('db');
    const log = secureBoot.edit(db, secureBoot.relabel(db, ev.EV_EFI_VARIABLE_AUTHORITY));
    const { reasons } = check(log, { ...refstate, db: refstate.db.slice(1) });
    expect(reasons).to.include('db: db holds a key the refstate does not allow');
  });

  it('two measurements of dbx, one extended at runtime, fail', () => {
    const dbx = secureBoot.variableIndex('dbx');
    const data = withVariableData(secureBoot.event(dbx), variableData(secureBoot.event(dbx)));
    const log = secureBoot.edit(dbx, secureBoot.relabel(dbx, ev.EV_EFI_VARIABLE_AUTHORITY), [secureBoot.encode(7, ev.EV_EFI_VARIABLE_AUTHORITY, data)]);
    expect(check(log).reasons).to.include('dbx: dbx is measured 2 times');
  });

  it('other firmware: its blob relabelled EV_NONHOST_INFO and the good blob extended at runtime', () => {
    const blob = lastBlobIndex(secureBoot);
    const evil = new CraftedLog(secureBoot.edit(blob, secureBoot.withDigestsOf(blob, 'other firmware')));
    const attack = evil.edit(blob, evil.relabel(blob, ev.EV_NONHOST_INFO), [secureBoot.relabel(blob, ev.EV_EFI_PLATFORM_FIRMWARE_BLOB)]);
    const { passed, reasons } = check(attack);
    expect(passed).to.equal(false);
    expect(reasons.some((r) => /EV_EFI_PLATFORM_FIRMWARE_BLOB after the PCR 0 separator$/.test(r)), reasons.join('\n')).to.equal(true);
    expect(reasons.some((r) => r.startsWith('scrtm_and_bios[0].platform_firmware')), reasons.join('\n')).to.equal(true);
  });

  it('other firmware: the PCR 0 separator relabelled EV_NONHOST_INFO, the good blob and a separator extended at runtime', () => {
    const blob = lastBlobIndex(secureBoot);
    const sep = separatorIndex(secureBoot, 0);
    const evil = new CraftedLog(secureBoot.edit(blob, secureBoot.withDigestsOf(blob, 'other firmware')));
    const hidden = new CraftedLog(evil.edit(blob, evil.relabel(blob, ev.EV_NONHOST_INFO)));
    const attack = hidden.edit(sep, hidden.relabel(sep, ev.EV_NONHOST_INFO), [
      secureBoot.relabel(blob, ev.EV_EFI_PLATFORM_FIRMWARE_BLOB),
      secureBoot.relabel(sep, ev.EV_SEPARATOR),
    ]);
    const { passed, reasons } = check(attack);
    expect(passed).to.equal(false);
    expect(reasons.some((r) => /a second separator in PCR 0$/.test(r)), reasons.join('\n')).to.equal(true);
    expect(reasons.some((r) => r.startsWith('scrtm_and_bios[0].platform_firmware')), reasons.join('\n')).to.equal(true);
  });

  it('another kernel command line: its event rewritten to a grub_cmd string and the good one extended at runtime', () => {
    const cmdline = secureBoot.parsed.events.findIndex(
      (e) => e.pcrIndex === 8 && Buffer.from(e.untrustedData).toString('latin1').startsWith('kernel_cmdline: '),
    );
    const booted = new CraftedLog(secureBoot.edit(cmdline, secureBoot.withDigestsOf(cmdline, 'init=/bin/sh')));
    const attack = booted.edit(cmdline, booted.withData(cmdline, Buffer.from('grub_cmd: echo\0', 'latin1')), [secureBoot.relabel(cmdline, ev.EV_IPL)]);
    const { passed, reasons } = check(attack);
    expect(passed).to.equal(false);
    expect(reasons).to.include(`event_log: event ${cmdline}: PCR 8 string "grub_cmd: echo\\u0000" is not what its digest measures`);
  });

  it('another kernel command line: its event renamed to a grub_cmd with the same text (still proven) and the good one extended at runtime', () => {
    const cmdline = secureBoot.parsed.events.findIndex(
      (e) => e.pcrIndex === 8 && Buffer.from(e.untrustedData).toString('latin1').startsWith('kernel_cmdline: '),
    );
    const evil = `${Buffer.from(secureBoot.event(cmdline).untrustedData).toString('latin1').slice('kernel_cmdline: '.length, -1)} init=/bin/sh`;
    // GRUB measures the text after the prefix; the event logs it with the prefix and a NUL.
    const booted = new CraftedLog(secureBoot.edit(cmdline, secureBoot.withDigestsOf(cmdline, evil)));
    const asBooted = booted.edit(cmdline, booted.withData(cmdline, Buffer.from(`kernel_cmdline: ${evil}\0`, 'latin1')));
    expect(check(asBooted).reasons).to.deep.equal(['kernels[0].kernel_cmdline: the kernel command line does not match the refstate regex']);
    const attack = booted.edit(cmdline, booted.withData(cmdline, Buffer.from(`grub_cmd: ${evil}\0`, 'latin1')), [secureBoot.relabel(cmdline, ev.EV_IPL)]);
    const { passed, reasons } = check(attack);
    expect(passed).to.equal(false);
    expect(reasons).to.deep.equal([`event_log: event ${cmdline}: PCR 8 string ${JSON.stringify(`grub_cmd: ${evil}`.slice(0, 60))} is a kernel command line under the "grub_cmd: " prefix`]);
  });

  it('a MokList the refstate does not allow, its text rewritten to MokListTrusted (no extend needed)', () => {
    const mok = secureBoot.parsed.events.findIndex((e) => e.pcrIndex === 14 && Buffer.from(e.untrustedData).toString('latin1') === 'MokList\0');
    const rogue = new CraftedLog(secureBoot.edit(mok, secureBoot.withDigestsOf(mok, 'a rogue MOK list')));
    expect(check(rogue.edit(mok, rogue.withData(mok, Buffer.from('MokList\0', 'latin1')))).reasons).to.deep.equal(['mokdig: MokList digest is not in the refstate']);
    const { passed, reasons } = check(rogue.edit(mok, rogue.withData(mok, Buffer.from('MokListTrusted\0', 'latin1'))));
    expect(passed).to.equal(false);
    expect(reasons).to.include('mokdig: MokListTrusted is measured 2 times');
    expect(reasons).to.include('mokdig: MokList is not measured in PCR 14, although the refstate lists its digests');
  });

  it('a MokList rewritten to MokListTrusted on a shim that measures no MokListTrusted', () => {
    const trusted = secureBoot.parsed.events.findIndex((e) => e.pcrIndex === 14 && Buffer.from(e.untrustedData).toString('latin1') === 'MokListTrusted\0');
    const older = new CraftedLog(secureBoot.edit(trusted, Buffer.alloc(0)));
    const mok = older.parsed.events.findIndex((e) => e.pcrIndex === 14 && Buffer.from(e.untrustedData).toString('latin1') === 'MokList\0');
    const rogue = new CraftedLog(older.edit(mok, older.withDigestsOf(mok, 'a rogue MOK list')));
    const { passed, reasons } = check(rogue.edit(mok, rogue.withData(mok, Buffer.from('MokListTrusted\0', 'latin1'))));
    expect(passed).to.equal(false);
    expect(reasons).to.deep.equal([
      'mokdig: MokList is not measured in PCR 14, although the refstate lists its digests',
      'mokdig: MokListTrusted is not the one byte 1 shim measures when MOK keys are trusted',
    ]);
  });

  it('a MokList rewritten to MokListTrusted and the good MokList extended at runtime, on a shim that measures no MokListTrusted', () => {
    const trusted = secureBoot.parsed.events.findIndex((e) => e.pcrIndex === 14 && Buffer.from(e.untrustedData).toString('latin1') === 'MokListTrusted\0');
    const older = new CraftedLog(secureBoot.edit(trusted, Buffer.alloc(0)));
    const mok = older.parsed.events.findIndex((e) => e.pcrIndex === 14 && Buffer.from(e.untrustedData).toString('latin1') === 'MokList\0');
    expect(check(older.edit(mok, older.relabel(mok, ev.EV_IPL))).passed, 'the older shim\'s boot (control)').to.equal(true);
    const rogue = new CraftedLog(older.edit(mok, older.withDigestsOf(mok, 'a rogue MOK list')));
    const { passed, reasons } = check(rogue.edit(mok, rogue.withData(mok, Buffer.from('MokListTrusted\0', 'latin1')), [older.relabel(mok, ev.EV_IPL)]));
    expect(passed).to.equal(false);
    expect(reasons).to.deep.equal(['mokdig: MokListTrusted is not the one byte 1 shim measures when MOK keys are trusted']);
  });

  it('a firmware blob relabelled EV_NONHOST_INFO is still firmware code (it cannot select a shorter refstate entry)', () => {
    const blob = lastBlobIndex(secureBoot);
    const [entry] = refstate.scrtm_and_bios;
    if (entry === undefined) {
      throw new Error('no scrtm_and_bios');
    }
    const shorter = { ...entry, platform_firmware: entry.platform_firmware.slice(0, -1) };
    const evil = new CraftedLog(secureBoot.edit(blob, secureBoot.withDigestsOf(blob, 'other firmware')));
    const log = evil.edit(blob, evil.relabel(blob, ev.EV_NONHOST_INFO));
    const { passed, reasons } = check(log, { ...refstate, scrtm_and_bios: [entry, shorter] });
    expect(passed).to.equal(false);
    expect(reasons.some((r) => r.startsWith('scrtm_and_bios')), reasons.join('\n')).to.equal(true);
  });
});
