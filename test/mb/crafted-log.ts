import { createHash } from 'node:crypto';
import type { ParsedEventLog, UntrustedEvent } from '../../lib/mb/event-log.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import { parseUefiVariable } from '../../lib/mb/internal/uefi-variable.js';
import * as ev from '../../lib/mb/internal/event-types.js';

/**
 * Edits of a real crypto-agile log, as a root user on the node could make them: an event's type is
 * not extended into its PCR, so it can be relabelled in place; an event extended at runtime is
 * appended. The node's TPM then quotes the replay of the edited log (`selfQuote`).
 */
export class CraftedLog {
  private readonly log: ParsedEventLog;

  constructor(private readonly bytes: Buffer) {
    this.log = parseEventLogInput(bytes);
  }

  get parsed(): ParsedEventLog {
    return this.log;
  }

  /** Index in `parsed.events` of the PCR 7 variable `name` measured as EV_EFI_VARIABLE_DRIVER_CONFIG. */
  variableIndex(name: string): number {
    const i = this.log.events.findIndex(
      (e) => e.pcrIndex === 7 && e.untrustedType === ev.EV_EFI_VARIABLE_DRIVER_CONFIG && parseUefiVariable(e.untrustedData).unicodeName === name,
    );
    if (i < 0) {
      throw new Error(`no ${name} variable in the log`);
    }
    return i;
  }

  event(index: number): UntrustedEvent {
    const e = this.log.events[index];
    if (e === undefined) {
      throw new Error(`no event ${index}`);
    }
    return e;
  }

  /**
   * The log with event `index` replaced by `replacement` and `appended` added at the end. Events
   * are encoded with `encode` (digests of the data) or `relabel` (the same digests, another type).
   */
  edit(index: number, replacement: Buffer, appended: readonly Buffer[] = []): Buffer {
    const e = this.event(index);
    const end = this.log.events[index + 1]?.offset ?? this.bytes.length;
    return Buffer.concat([this.bytes.subarray(0, e.offset), replacement, this.bytes.subarray(end), ...appended]);
  }

  /** An event of the log's banks whose digests are the hash of `data` (what firmware extends). */
  encode(pcr: number, type: number, data: Uint8Array): Buffer {
    return this.encodeWith(pcr, type, data, (alg) => createHash(nodeName(alg)).update(data).digest());
  }

  /** Event `index` with its digests and data kept and its claimed type (and PCR) changed. */
  relabel(index: number, type: number): Buffer {
    const e = this.event(index);
    return this.encodeWith(e.pcrIndex, type, e.untrustedData, (alg) => Buffer.from(digestOf(e, alg)));
  }

  /** Event `index` with its type and data kept and its digests those of another measurement. */
  withDigestsOf(index: number, measured: string): Buffer {
    const e = this.event(index);
    return this.encodeWith(e.pcrIndex, e.untrustedType, e.untrustedData, (alg) => createHash(nodeName(alg)).update(measured).digest());
  }

  /** Event `index` with its type and digests kept and its logged data replaced. */
  withData(index: number, data: Uint8Array): Buffer {
    const e = this.event(index);
    return this.encodeWith(e.pcrIndex, e.untrustedType, data, (alg) => Buffer.from(digestOf(e, alg)));
  }

  private encodeWith(pcr: number, type: number, data: Uint8Array, digest: (alg: UntrustedEvent['digests'][number]['alg']) => Buffer): Buffer {
    const head = Buffer.alloc(12);
    head.writeUInt32LE(pcr, 0);
    head.writeUInt32LE(type, 4);
    head.writeUInt32LE(this.log.algorithms.length, 8);
    const parts: Buffer[] = [head];
    for (const alg of this.log.algorithms) {
      const id = Buffer.alloc(2);
      id.writeUInt16LE(alg.algId);
      parts.push(id, digest(alg));
    }
    const size = Buffer.alloc(4);
    size.writeUInt32LE(data.length);
    parts.push(size, Buffer.from(data));
    return Buffer.concat(parts);
  }
}

function nodeName(alg: UntrustedEvent['digests'][number]['alg']): string {
  if (alg.nodeName === null) {
    throw new Error(`no hash for ${alg.name}`);
  }
  return alg.nodeName;
}

function digestOf(e: UntrustedEvent, alg: UntrustedEvent['digests'][number]['alg']): Uint8Array {
  const d = e.digests.find((x) => x.alg === alg);
  if (d === undefined) {
    throw new Error(`event ${e.sequence} has no ${alg.name} digest`);
  }
  return d.digest;
}

/** UEFI_VARIABLE_DATA with its VariableData replaced (name and GUID kept). */
export function withVariableData(variableEvent: UntrustedEvent, variableData: Uint8Array): Buffer {
  const data = Buffer.from(variableEvent.untrustedData);
  const start = 32 + 2 * Number(data.readBigUInt64LE(16));
  const head = Buffer.from(data.subarray(0, start));
  head.writeBigUInt64LE(BigInt(variableData.length), 24);
  return Buffer.concat([head, variableData]);
}

/** The VariableData of a UEFI_VARIABLE_DATA event. */
export function variableData(variableEvent: UntrustedEvent): Buffer {
  return Buffer.from(parseUefiVariable(variableEvent.untrustedData).variableData);
}
