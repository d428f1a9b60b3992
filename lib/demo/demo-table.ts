import type { Node } from '../../interfaces/node.js';

/** One row of the demo's node table. */
export interface NodeRow {
  readonly name: string;
  readonly state: string;
  /** The node's trust level (docs/identity.md), `-` before the gate saw it. */
  readonly trust: string;
  readonly attestation: string;
  /** What the node got when it asked the broker for its disk key. */
  readonly diskKey: string;
  readonly detail: string;
}

/** What a node got from the broker: the table's cell, and the broker's reason when it was refused. */
export interface DiskKeyAnswer {
  readonly cell: string;
  readonly detail?: string;
}

/**
 * A node as the table shows it: provision state, last attestation verdict, and its event ids or reason;
 * with neither (a node that passed), the broker's reason for refusing its disk key, so a good node
 * refused (e.g. a PASS the verifier no longer counts as fresh) says why.
 */
export function nodeRow(node: Node, diskKey: DiskKeyAnswer = { cell: '-' }): NodeRow {
  const last = node.lastAttestation;
  const own = last.eventIds.length > 0 ? last.eventIds.join(', ') : (last.reason ?? '');
  const detail = own === '' && diskKey.detail !== undefined ? `broker: ${diskKey.detail}` : own;
  return {
    name: node.name ?? node.uuid,
    state: node.provisionState,
    trust: node.trust?.level ?? '-',
    attestation: last.status ?? '-',
    diskKey: diskKey.cell,
    detail: shorten(detail, 70),
  };
}

/** A plain-text table with a header, columns padded to their widest cell. */
export function formatTable(rows: readonly NodeRow[]): string[] {
  const header: NodeRow = { name: 'node', state: 'provision state', trust: 'trust level', attestation: 'attestation', diskKey: 'disk key (broker)', detail: 'events / reason' };
  const all = [header, ...rows];
  const width = (key: keyof NodeRow): number => Math.max(...all.map((row) => row[key].length));
  const columns = (['name', 'state', 'trust', 'attestation', 'diskKey'] as const).map((key) => ({ key, width: width(key) }));
  const line = (row: NodeRow): string => `  ${columns.map(({ key, width: w }) => row[key].padEnd(w)).join('  ')}  ${row.detail}`.trimEnd();
  const rule = `  ${columns.map(({ width: w }) => '-'.repeat(w)).join('  ')}  ${'-'.repeat(15)}`;
  return [line(header), rule, ...rows.map(line)];
}

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}
