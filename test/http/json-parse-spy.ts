/** Records the length of every text given to `JSON.parse` until `restore` (the tests' way to see what a reader parsed). */
export function spyOnJsonParse(): { readonly lengths: number[]; restore(): void } {
  const parse = JSON.parse;
  const lengths: number[] = [];
  JSON.parse = (text: string, reviver?: Parameters<typeof JSON.parse>[1]): unknown => {
    lengths.push(text.length);
    return parse(text, reviver);
  };
  return { lengths, restore: () => (JSON.parse = parse) };
}
