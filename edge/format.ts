import { formatBytes } from '../catalog/format-bytes.js';
import type { ProgressUnit } from '../catalog/reporter.js';

/** A quantity in its unit: `1.5 MiB` for bytes, `12` for items. */
export function formatQuantity(n: number, unit: ProgressUnit): string {
  return unit === 'bytes' ? formatBytes(n) : String(n);
}
