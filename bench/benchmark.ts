/** One benchmark: a name for `npm run bench -- <name>` and a function that prints its figures. */
export interface Benchmark {
  readonly name: string;
  readonly description: string;
  run(args: readonly string[]): Promise<void>;
}
