/** The most edits (insert, delete or change one character) a typo may be from the name it meant. */
const MAX_TYPO_EDITS = 3;

/** The one of `names` closest to `typed` within `MAX_TYPO_EDITS` edits (first on a tie), for a "did you mean" hint. */
export function nearestName(typed: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = MAX_TYPO_EDITS + 1;
  for (const name of names) {
    // Lengths further apart than that need more edits anyway; skipping them keeps a hostile, huge name cheap.
    if (Math.abs(typed.length - name.length) > MAX_TYPO_EDITS) continue;
    const distance = editDistance(typed, name);
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
