/**
 * Resolver refusals (E_RESOLVE, E_CONFLICT, E_NEEDED) carry their explanation as data:
 * `details.explanation` (one sentence per unmet requirement) and, for E_RESOLVE/E_CONFLICT,
 * `problems` (the same as records), `searchSteps` and `gaveUp`. On a terminal the explanation is
 * shown once as lines; under --json the structured fields are the answer and pass through exactly.
 */

/** Detail keys that are the structured form of an explanation: shown as lines, never as raw JSON. */
export const STRUCTURED_EXPLANATION_KEYS: ReadonlySet<string> = new Set(['explanation', 'problems', 'searchSteps', 'gaveUp']);

/** The explanation lines in an error's details, or none. */
export function explanationLines(details: Record<string, unknown>): string[] {
  const lines = details['explanation'];
  return Array.isArray(lines) ? lines.filter((l): l is string => typeof l === 'string') : [];
}

/**
 * The lines a person reads under an error's message: every explanation line the message does not
 * already say (a single problem is the message itself, so nothing is repeated).
 */
export function renderExplanation(details: Record<string, unknown>, message: string): string[] {
  const lines = explanationLines(details).filter((l) => !message.includes(l));
  return lines.length === 0 ? [] : ['  why:', ...lines.map((l) => `    ${l}`)];
}
