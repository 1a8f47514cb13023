/**
 * Rows as aligned columns for people: each column as wide as its widest cell (so a long license or
 * URL pushes the next column right instead of misaligning it), two spaces between columns, the
 * last column not padded, trailing spaces trimmed.
 */
export function formatTable(rows: readonly (readonly string[])[]): string[] {
  const n = Math.max(0, ...rows.map((r) => r.length));
  const widths = Array.from({ length: n }, (_, i) => Math.max(0, ...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
