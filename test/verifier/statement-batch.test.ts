import { expect } from 'chai';
import { StatementBatch } from '../../lib/verifier/statement-batch.js';

/** A statement that records what it was sent and answers the items it was given, or fails when told to. */
class RecordingStatement {
  readonly sent: number[][] = [];
  fail = false;

  readonly run = async (items: readonly number[]): Promise<Set<number>> => {
    this.sent.push([...items]);
    await new Promise((resolve) => setImmediate(resolve));
    if (this.fail) throw new Error('the database refused the statement');
    return new Set(items);
  };
}

describe('statement batch: hot-path writes share a statement', function () {
  it('items within the delay share one statement, and a full batch goes at once', async function () {
    const statement = new RecordingStatement();
    const batch = new StatementBatch(statement.run, 30, 3, 'closed');
    const outcomes = await Promise.all([1, 2, 3, 4].map((item) => batch.submit(item)));
    expect(statement.sent).to.deep.equal([[1, 2, 3], [4]]);
    expect(outcomes.map((outcome) => [...outcome])).to.deep.equal([[1, 2, 3], [1, 2, 3], [1, 2, 3], [4]]);
  });

  it('an item sent alone has a statement of its own, without waiting', async function () {
    const statement = new RecordingStatement();
    const batch = new StatementBatch(statement.run, 60_000, 250, 'closed');
    expect([...(await batch.submit(7, true))]).to.deep.equal([7]);
    expect(statement.sent).to.deep.equal([[7]]);
  });

  it('a failed statement rejects every item in it, and the next statement goes on', async function () {
    const statement = new RecordingStatement();
    const batch = new StatementBatch(statement.run, 5, 250, 'closed');
    statement.fail = true;
    const failed = await Promise.allSettled([batch.submit(1), batch.submit(2)]);
    expect(failed.map((f) => f.status)).to.deep.equal(['rejected', 'rejected']);
    statement.fail = false;
    expect([...(await batch.submit(3))]).to.deep.equal([3]);
  });

  it('a statement that throws instead of rejecting is a rejection, batched or alone', async function () {
    const throwing = (): Promise<Set<number>> => {
      throw new Error('thrown before any promise');
    };
    const batch = new StatementBatch(throwing, 1, 250, 'closed');
    const outcomes = await Promise.allSettled([batch.submit(1), batch.submit(2, true)]);
    expect(outcomes.map((outcome) => outcome.status)).to.deep.equal(['rejected', 'rejected']);
  });

  it('close sends what waits, resolves after every statement answered, and refuses later items', async function () {
    const statement = new RecordingStatement();
    const batch = new StatementBatch(statement.run, 60_000, 250, 'the batch is closed');
    let answered = false;
    const waiting = batch.submit(1).then((outcome) => {
      answered = true;
      return outcome;
    });
    await batch.close();
    expect(statement.sent).to.deep.equal([[1]]);
    expect(answered).to.equal(true);
    expect([...(await waiting)]).to.deep.equal([1]);
    for (const alone of [false, true]) {
      await batch.submit(2, alone).then(
        () => expect.fail('a submit after close was accepted'),
        (error: unknown) => expect(String(error)).to.include('the batch is closed'),
      );
    }
    expect(statement.sent).to.deep.equal([[1]]);
  });

  it('flush sends what waits without its window and leaves the batch open: a later item waits for a window of its own', async function () {
    const statement = new RecordingStatement();
    const batch = new StatementBatch(statement.run, 60_000, 250, 'closed');
    const waiting = Promise.all([batch.submit(1), batch.submit(2)]);
    batch.flush();
    expect((await waiting).map((outcome) => [...outcome])).to.deep.equal([[1, 2], [1, 2]]);
    let later = false;
    const next = batch.submit(3).then(() => (later = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(later, 'the later item waits for its window').to.equal(false);
    expect(statement.sent).to.deep.equal([[1, 2]]);
    await batch.close();
    await next;
    expect(statement.sent).to.deep.equal([[1, 2], [3]]);
  });
});
