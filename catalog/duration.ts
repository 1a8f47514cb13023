import { SwpkgError } from './errors.js';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };

/** Parses `90s`, `30m`, `12h`, `14d`, `2w`, `1y` (or bare seconds) into seconds. */
export function parseDuration(text: string, flag = 'duration'): number {
  const m = /^(\d+)([smhdwy]?)$/.exec(text.trim());
  if (!m) {
    throw new SwpkgError('E_USAGE', `${flag} ${JSON.stringify(text)} is not a duration`, {
      hint: 'use a number with a unit: 90s, 30m, 12h, 14d, 2w, 1y',
    });
  }
  return Number(m[1]) * (UNITS[m[2] || 's'] ?? 1);
}
