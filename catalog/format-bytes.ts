/**
 * Bytes in IEC units for people (`0 B`, `1023 B`, `1.5 KiB`, `121 KiB`, `5.0 MiB`): one decimal
 * below 10, whole numbers above, so a column of sizes stays short. The one formatter every tool and
 * the repository page use; exact counts go in JSON and title attributes.
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '?';
  const sign = bytes < 0 ? '-' : '';
  const abs = Math.abs(bytes);
  if (abs < 1024) return `${sign}${abs} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = abs / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  // 9.96 KiB would print as "10.0": round first, then choose the precision.
  const text = Math.round(v * 10) / 10 < 10 ? v.toFixed(1) : Math.round(v).toString();
  return `${sign}${text} ${units[i]}`;
}
