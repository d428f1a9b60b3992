import { expect } from 'chai';
import { PeriodicTask } from '../../lib/timing/periodic-task.js';

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => {};
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

describe('PeriodicTask', function () {
  it('runs at start; stop during a run resolves only when that run has ended, and no run follows', async function () {
    const release = deferred();
    const started = deferred();
    let runs = 0;
    let ended = false;
    const task = new PeriodicTask(
      1,
      async () => {
        runs += 1;
        started.resolve();
        await release.promise;
        ended = true;
      },
      () => {},
    );
    task.start();
    expect(runs, 'the first run starts within start()').to.equal(1);
    await started.promise;
    const stopping = task.stop();
    expect(task.isStopped).to.equal(true);
    let stopResolved = false;
    void stopping.then(() => (stopResolved = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopResolved, 'stop waits for the run in progress').to.equal(false);
    release.resolve();
    await stopping;
    expect(ended).to.equal(true);
    // A reschedule would fire 1 ms after the run ended: give it far longer than that.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(runs, 'no run after stop').to.equal(1);
  });

  it('hands a run that throws to onError and still schedules the next run', async function () {
    const errors: unknown[] = [];
    const secondRun = deferred();
    let runs = 0;
    const task = new PeriodicTask(
      1,
      async () => {
        runs += 1;
        if (runs === 1) throw new Error('first run failed');
        secondRun.resolve();
      },
      (error) => errors.push(error),
    );
    task.start();
    await secondRun.promise;
    await task.stop();
    expect(errors).to.have.length(1);
    expect((errors[0] as Error).message).to.equal('first run failed');
  });

  it('hands a run that throws synchronously to onError too', async function () {
    const errors: unknown[] = [];
    const task = new PeriodicTask(
      60_000,
      () => {
        throw new Error('thrown before any await');
      },
      (error) => errors.push(error),
    );
    task.start();
    await task.stop();
    expect(errors.map((error) => (error as Error).message)).to.deep.equal(['thrown before any await']);
  });

  it('stopped between runs: the scheduled run does not happen', async function () {
    const firstEnded = deferred();
    let runs = 0;
    const task = new PeriodicTask(
      50,
      async () => {
        runs += 1;
        firstEnded.resolve();
      },
      () => {},
    );
    task.start();
    await firstEnded.promise;
    // Past the run's end: the next run is now on its timer.
    await new Promise((resolve) => setImmediate(resolve));
    await task.stop();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(runs).to.equal(1);
  });
});
