import { expect } from 'chai';
import { GroupCommit } from '../../lib/broker/group-commit.js';

/** A commit function whose transactions stay pending until the test settles them, recording each batch. */
class HeldCommits {
  readonly batches: string[][] = [];
  private pending: { resolve: (outcomes: string[]) => void; reject: (error: Error) => void; batch: string[] }[] = [];

  readonly commit = (batch: readonly string[]): Promise<string[]> => {
    this.batches.push([...batch]);
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject, batch: [...batch] }));
  };

  /** Lets the pending transaction commit, each item's outcome `done:<item>`. */
  commitNext(): void {
    const next = this.pending.shift() as { resolve: (outcomes: string[]) => void; batch: string[] };
    next.resolve(next.batch.map((item) => `done:${item}`));
  }

  failNext(error: Error): void {
    (this.pending.shift() as { reject: (error: Error) => void }).reject(error);
  }
}

const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('broker: GroupCommit', function () {
  it('starts an idle item at once, and batches the items that arrive meanwhile, in order, up to the bound', async function () {
    const held = new HeldCommits();
    const group = new GroupCommit(held.commit, 3);
    const outcomes = ['a', 'b', 'c', 'd', 'e'].map((item) => group.submit(item));
    await settled();
    expect(held.batches).to.deep.equal([['a']]);
    held.commitNext();
    await settled();
    expect(held.batches).to.deep.equal([['a'], ['b', 'c', 'd']]);
    held.commitNext();
    await settled();
    held.commitNext();
    expect(await Promise.all(outcomes)).to.deep.equal(['done:a', 'done:b', 'done:c', 'done:d', 'done:e']);
    expect(held.batches).to.deep.equal([['a'], ['b', 'c', 'd'], ['e']]);
  });

  it('never puts two items of one key in a batch: the later waits for the next', async function () {
    const held = new HeldCommits();
    const group = new GroupCommit(held.commit, 64, (item: string) => item.split('#')[0] as string);
    const outcomes = ['first', 's#1', 'other', 's#2', 's#3'].map((item) => group.submit(item));
    await settled();
    for (let i = 0; i < 4; i += 1) {
      held.commitNext();
      await settled();
    }
    await Promise.all(outcomes);
    expect(held.batches).to.deep.equal([['first'], ['s#1', 'other'], ['s#2'], ['s#3']]);
  });

  it('rejects every item of a failed batch with its error, and goes on with the next', async function () {
    const held = new HeldCommits();
    const group = new GroupCommit(held.commit, 64);
    const first = group.submit('a');
    const queued = ['b', 'c'].map((item) => group.submit(item));
    await settled();
    held.commitNext();
    await settled();
    const later = group.submit('d');
    held.failNext(new Error('the records cannot be stored'));
    for (const outcome of queued) {
      await outcome.then(
        () => expect.fail('an item of a failed batch resolved'),
        (error: unknown) => expect(String(error)).to.contain('cannot be stored'),
      );
    }
    await settled();
    held.commitNext();
    expect([await first, await later]).to.deep.equal(['done:a', 'done:d']);
  });
});
