// "Did you mean …?": the closest known name within a typo's reach, for the CLI and the console.

/** The closest candidate within a typo's reach of `word` (one edit for short words, two otherwise). */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const reach = word.length <= 4 ? 1 : 2;
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance <= reach && (!best || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}

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

/**
 * Up to `count` candidates closest to `word`: within a typo's reach (as nearest), or sharing its
 * start (kraken → krakenfutures), nearest first. Empty when nothing is close.
 */
export function closestNames(word: string, candidates: readonly string[], count = 3): string[] {
  const reach = word.length <= 4 ? 1 : 2;
  return candidates
    .map((candidate) => ({ candidate, distance: editDistance(word, candidate), sharesStart: word.length >= 3 && (candidate.startsWith(word) || word.startsWith(candidate)) }))
    .filter((c) => c.distance <= reach || c.sharesStart)
    .sort((a, b) => a.distance - b.distance || a.candidate.localeCompare(b.candidate))
    .slice(0, count)
    .map((c) => c.candidate);
}
