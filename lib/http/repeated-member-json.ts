import { checkJsonText, DEFAULT_MAX_JSON_VALUES } from './json-guard.js';

/** A JSON body's reader: the value `JSON.parse` gives for the body's UTF-8 text; throws when it is not JSON (or holds too many values). */
export type JsonBodyReader = (body: Buffer) => unknown;

/**
 * JSON values an agent's reply may hold: its results are a few members, the logs among them strings.
 * An agent sends up to 64 MiB (`ThinHttpsClient`'s reply limit), and 32 MiB of `{}` took JSON.parse
 * alone 8.5 s of the verifier's event loop; past the bound the reply is refused before it is parsed.
 */
export const MAX_REPLY_JSON_VALUES = DEFAULT_MAX_JSON_VALUES;

/** `JSON.parse` of a reply's text, once `checkJsonText` found it within `MAX_REPLY_JSON_VALUES`. */
function parseReplyText(text: string): unknown {
  checkJsonText(text, MAX_REPLY_JSON_VALUES);
  return JSON.parse(text);
}

/** `JSON.parse` of the body's UTF-8 text (at most `MAX_REPLY_JSON_VALUES` values): what every reply is read with unless a reader is given. */
export const readJsonBody: JsonBodyReader = (body) => parseReplyText(body.toString('utf8'));

/** A remembered member value: its text, and the bytes that stand for it in a reply (the same, as ASCII). */
export interface RepeatedText {
  readonly text: string;
  readonly bytes: Buffer;
}

/**
 * A pool's hold on one remembered value: what a reader keeps between replies. The pool empties it when
 * it drops the value, so a reader never keeps a text alive past the pool's byte budget.
 */
export interface PooledText {
  value: RepeatedText | undefined;
}

/** Characters a JSON string holds as they are, with no escape: printable ASCII but `"` and `\`. */
const PLAIN_JSON_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/** Member names with one spelling in JSON text besides `\u` escapes. */
const PLAIN_NAME = /^[A-Za-z0-9_-]+$/;
/** Shorter member values are not remembered: parsing them costs little. */
const MIN_REMEMBERED_LENGTH = 1024;
/**
 * Longer member values are not remembered, only parsed as sent each time: a real boot log is ~51 KB of
 * base64, while an agent may send up to 64 MiB (`ThinHttpsClient`'s reply limit). This cap also keeps
 * V8's hashing cheap: a string longer than 16,383 characters is hashed by its length alone, so texts of
 * one length share a `Map` bucket and a lookup compares them; at this size and count that costs little,
 * and only when a whole body was parsed.
 */
const MAX_REMEMBERED_LENGTH = 256 * 1024;
/**
 * Bytes a `RepeatedTexts` pool keeps at most (each text counted twice: the string and its bytes): room
 * for ~600 distinct 51 KB boot logs, or 64 of the longest remembered.
 */
const POOL_BUDGET_BYTES = 64 * 1024 * 1024;

/**
 * Member texts shared by the readers of one process: the agents of a fleet booted from the same
 * firmware send the same boot log, and each reader holding its own copy would keep two copies of it
 * (text and bytes) per agent. Readers hold only a `PooledText`, so the pool's budget bounds all the
 * remembered texts of the process, whatever the agents send: the least recently used ones are dropped
 * first, so one agent sending a new log every round evicts its own old logs, not the fleet's shared one.
 *
 * A text is remembered from any 2xx reply, before the round checks it (`ThinHttpsClient` gives only
 * those to a request's reader): an agent's log is not trusted for being remembered, only read faster
 * while its bytes repeat, and the cap and budget bound what a hostile agent can make the pool hold.
 */
export class RepeatedTexts {
  private readonly byText = new Map<string, PooledText>();
  /** The held texts, least recently used first (a `Set` keeps insertion order; a use re-inserts). */
  private readonly byUse = new Set<PooledText>();
  private heldBytes = 0;

  /** The pool's hold on `text` (added, and the least recently used dropped past the budget, when it has none). */
  hold(text: string): PooledText {
    let pooled = this.byText.get(text);
    if (pooled === undefined) {
      pooled = { value: { text, bytes: Buffer.from(text, 'latin1') } };
      this.byText.set(text, pooled);
      this.heldBytes += 2 * text.length;
      this.evictPastBudget();
    }
    this.use(pooled);
    return pooled;
  }

  /** Marks a held text as just used (it is dropped last). */
  use(pooled: PooledText): void {
    if (pooled.value === undefined) return;
    this.byUse.delete(pooled);
    this.byUse.add(pooled);
  }

  private evictPastBudget(): void {
    for (const oldest of this.byUse) {
      if (this.heldBytes <= POOL_BUDGET_BYTES) return;
      const value = oldest.value as RepeatedText;
      this.byUse.delete(oldest);
      this.byText.delete(value.text);
      this.heldBytes -= 2 * value.text.length;
      oldest.value = undefined;
    }
  }
}

/**
 * Reads replies that carry one large string member which mostly repeats from the last reply: the
 * agent's boot log (`results.mb_measurement_list`, 51 KB of base64) comes with every quote, unchanged
 * until the node reboots. When the member's bytes in the body equal the last value read, the body is
 * parsed with that value left out and the remembered string put back: no 51 KB string to decode,
 * scan and collect each round, and the same string object each round (the measured-boot memo then
 * compares it by identity). The value is exactly `JSON.parse`'s, or the reader falls back to it:
 *
 * - the remembered value is plain JSON text (`PLAIN_JSON_TEXT`), so bytes equal to it are, between
 *   quotes, a string token with no escape, and decode to that very string;
 * - the member's name occurs once in the body as `"name"`, followed by `:"`, and the body has no `\u`
 *   escape, so no other key can spell the name (the other escapes stand for `"`, `\`, `/` and control
 *   characters, none of them allowed in the name); the parse of the body without the value must then
 *   hold the member at `path` as `""` — a name inside another string, or at another depth, leaves it
 *   absent, and the whole body is parsed instead;
 * - the body without the value is JSON exactly when the body is (the value removed is one string
 *   token's content); any failure re-parses the whole body, so errors are `JSON.parse`'s own.
 */
export class RepeatedMemberJsonReader {
  private readonly name: string;
  /** `"name"`, as bytes to find in a body and as text to find in its decoded parts. */
  private readonly quotedName: Buffer;
  private readonly quotedNameText: string;
  private last: PooledText | undefined;

  /** @param path  Where the member sits: the keys from the top object down, the last one the member. */
  constructor(
    private readonly path: readonly [string, ...string[]],
    private readonly pool: RepeatedTexts,
  ) {
    this.name = path[path.length - 1] as string;
    if (!PLAIN_NAME.test(this.name)) {
      throw new TypeError(`member name ${JSON.stringify(this.name)}: only letters, digits, "_" and "-" have one spelling in JSON`);
    }
    this.quotedNameText = JSON.stringify(this.name);
    this.quotedName = Buffer.from(this.quotedNameText, 'latin1');
  }

  readonly read: JsonBodyReader = (body) => this.withoutRepeat(body) ?? this.parseWhole(body);

  /** The value with the remembered member put back, or undefined when the body is not read that way. */
  private withoutRepeat(body: Buffer): unknown {
    const held = this.last;
    const last = held?.value;
    if (held === undefined || last === undefined) return undefined;
    const at = body.indexOf(this.quotedName);
    const start = at + this.quotedName.length + 2;
    const end = start + last.bytes.length;
    if (at < 0 || body[start - 2] !== 0x3a || body[start - 1] !== 0x22 || body[end] !== 0x22 || last.bytes.compare(body, start, end) !== 0) {
      return undefined;
    }
    const before = body.toString('utf8', 0, start);
    const after = body.toString('utf8', end);
    if (before.includes('\\u') || after.includes('\\u') || after.includes(this.quotedNameText)) {
      return undefined;
    }
    let value: unknown;
    try {
      value = parseReplyText(before + after);
    } catch {
      return undefined;
    }
    const holder = this.holderOf(value);
    if (holder === undefined || holder[this.name] !== '') return undefined;
    holder[this.name] = last.text;
    this.pool.use(held);
    return value;
  }

  /** `JSON.parse` of the whole body; a long plain member value is remembered for the next reply. */
  private parseWhole(body: Buffer): unknown {
    const value = readJsonBody(body);
    const text = this.holderOf(value)?.[this.name];
    if (typeof text === 'string' && text.length >= MIN_REMEMBERED_LENGTH && text.length <= MAX_REMEMBERED_LENGTH && text !== this.last?.value?.text && PLAIN_JSON_TEXT.test(text)) {
      this.last = this.pool.hold(text);
    }
    return value;
  }

  /** The object that holds the member (`path` without its last key), when the value has one there. */
  private holderOf(value: unknown): Record<string, unknown> | undefined {
    let holder = value;
    for (let i = 0; i < this.path.length - 1; i += 1) {
      if (holder === null || typeof holder !== 'object') return undefined;
      holder = (holder as Record<string, unknown>)[this.path[i] as string];
    }
    return holder !== null && typeof holder === 'object' && !Array.isArray(holder) ? (holder as Record<string, unknown>) : undefined;
  }
}
