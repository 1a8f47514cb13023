import type { FlagSpec } from './args.js';
import type { CommandDef } from './commands.js';

export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'root', type: 'string', value: 'DIR', summary: 'The pkg root (default $PKG_ROOT, else /pkg).' },
  {
    name: 'json',
    type: 'boolean',
    summary: 'Print one JSON document: {ok:true,result,warnings} or {ok:false,error:{code,message,hint,details}}.',
  },
  { name: 'yes', short: 'y', type: 'boolean', summary: 'Apply the plan without asking (required when there is no terminal).' },
  { name: 'quiet', short: 'q', type: 'boolean', summary: 'No progress or info messages; warnings and errors still print.' },
  {
    name: 'lock-timeout',
    type: 'number',
    value: 'SECONDS',
    summary: 'How long to wait for another pkg that is changing the root (default 30; 0 fails at once).',
  },
  {
    name: 'stall-timeout',
    type: 'number',
    value: 'SECONDS',
    summary: 'A download that receives nothing for this long fails with E_STALLED (default 30).',
  },
  {
    name: 'min-rate',
    type: 'number',
    value: 'BYTES_PER_SECOND',
    summary:
      'A download whose average rate falls below this (checked every stall window) fails with E_STALLED (default 1024; 0 turns it off).',
  },
  {
    name: 'fetch-deadline',
    type: 'number',
    value: 'SECONDS',
    summary: 'Each file from each server, resumes included, must arrive within this or fails with E_STALLED (default 1800; 0: none).',
  },
  {
    name: 'downloads',
    type: 'number',
    value: 'N',
    summary: 'Package downloads at once, each with the limits above (default 4; 1 downloads one after another).',
  },
  { name: 'help', short: 'h', type: 'boolean', summary: 'Show help.' },
  { name: 'version', short: 'V', type: 'boolean', summary: 'Show the version.' },
];

/**
 * Exit codes and the error codes behind them. Kept as text here so `pkg
 * --help` loads nothing heavy; a unit test checks it against the
 * registry in catalog/errors.ts.
 */
export const EXIT_CODE_TABLE: { exit: number; meaning: string; codes: string[] }[] = [
  { exit: 0, meaning: 'success', codes: [] },
  { exit: 1, meaning: 'unexpected failure (a bug: please report it)', codes: ['E_INTERNAL'] },
  {
    exit: 2,
    meaning: 'usage: bad arguments, unknown name, confirmation needed',
    codes: ['E_USAGE', 'E_CONFIRM', 'E_NOT_FOUND', 'E_INVALID_RANGE', 'E_INVALID_KEY', 'E_INVALID_JSON'],
  },
  {
    exit: 3,
    meaning: 'refused by verification',
    codes: [
      'E_SIGNATURE',
      'E_UNKNOWN_KEY',
      'E_THRESHOLD',
      'E_EXPIRED',
      'E_ROLLBACK',
      'E_EQUIVOCATION',
      'E_INCOMPATIBLE',
      'E_HASH_MISMATCH',
      'E_TOO_LARGE',
      'E_UNSAFE_PATH',
      'E_CORRUPT',
      'E_BAD_ROOT',
      'E_UNTRUSTED',
      'E_BAD_MANIFEST',
      'E_REDIRECT',
      'E_MALFORMED',
      'E_ENCODING',
      'E_DUPLICATE_KEY',
      'E_UNSAFE_NUMBER',
      'E_RESERVED_KEY',
      'E_UNKNOWN_FIELD',
      'E_PAYLOAD_TYPE',
      'E_BAD_CATALOG',
      'E_WRONG_REPO',
    ],
  },
  { exit: 4, meaning: 'cannot resolve', codes: ['E_RESOLVE', 'E_CONFLICT', 'E_FILE_CONFLICT', 'E_NEEDED', 'E_NOT_INSTALLED'] },
  {
    exit: 5,
    meaning: 'network or fetch',
    codes: ['E_NETWORK', 'E_HTTP', 'E_STALLED', 'E_FETCH', 'E_REDIRECT_LOOP', 'E_HEADERS_TOO_LARGE'],
  },
  { exit: 6, meaning: 'another pkg holds the lock', codes: ['E_LOCKED'] },
  { exit: 7, meaning: 'store or filesystem', codes: ['E_STORE', 'E_DISK_FULL', 'E_READ_ONLY'] },
  { exit: 8, meaning: 'a required health check failed; the change was switched back', codes: ['E_HEALTH_CHECK'] },
];

const ENVIRONMENT: [string, string][] = [
  ['PKG_ROOT', 'default for --root'],
  ['PKG_LOCK_TIMEOUT', 'default for --lock-timeout (seconds)'],
  ['PKG_STALL_TIMEOUT', 'default for --stall-timeout (seconds)'],
  ['PKG_STALL_MIN_BYTES', 'bytes that must arrive per stall window (default 1)'],
  ['PKG_MIN_RATE', 'default for --min-rate (bytes per second)'],
  ['PKG_FETCH_DEADLINE', 'default for --fetch-deadline (seconds)'],
  ['PKG_MAX_CATALOG_BYTES', 'catalog size cap (default 67108864, 64 MiB)'],
  ['PKG_FETCH_RETRIES', 'resume attempts per mirror after a reset or stall (default 2)'],
  ['PKG_DOWNLOADS', 'default for --downloads'],
  ['PKG_HEALTH_DIR', 'system-wide health checks (default /etc/pkg/health.d for the root /pkg, else ROOT/health.d)'],
  ['PKG_STAGED_REPOS_DIR', 'repositories staged by the image (default /usr/lib/pkg/repos.d for the root /pkg, else ROOT/repos.d)'],
  [
    'PKG_CLIENT_ARCH, PKG_CLIENT_ABI',
    'this machine for compatibility checks (default: the arch Node runs on, x86_64 or aarch64; linux-musl-static)',
  ],
];

function wrap(text: string, width: number, indent: string): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(indent + line);
  return out;
}

function flagLines(flags: FlagSpec[]): string[] {
  const left = flags.map(
    (f) => `${f.short ? `-${f.short}, ` : '    '}--${f.name}${f.value ? ` ${f.value}` : ''}${f.type === 'strings' ? '...' : ''}`,
  );
  const w = Math.max(...left.map((l) => l.length));
  return flags.map((f, i) => `  ${left[i]!.padEnd(w)}  ${f.summary}`);
}

function exitCodeLines(): string[] {
  return EXIT_CODE_TABLE.map((e) => `  ${e.exit}  ${e.meaning}${e.codes.length ? ` (${e.codes.join(', ')})` : ''}`);
}

export function usageOf(c: CommandDef): string {
  const args = c.args.map((a) => {
    const n = a.variadic ? `${a.name}...` : a.name;
    return a.required ? n : `[${n}]`;
  });
  const flags = c.flags.map((f) => `[--${f.name}${f.value ? ` ${f.value}` : ''}]${f.type === 'strings' ? '...' : ''}`);
  return ['pkg', ...c.words, ...args, ...flags].join(' ');
}

export function globalHelp(commands: CommandDef[], version: string): string {
  const rows = commands.map((c) => [
    `${c.words.join(' ')} ${c.args.map((a) => (a.required ? a.name : `[${a.name}]`) + (a.variadic ? '...' : '')).join(' ')}`.trim(),
    c.summary,
  ]);
  const w = Math.max(...rows.map((r) => r[0]!.length));
  return [
    `pkg ${version}: install, upgrade and roll back packages from signed repositories`,
    '',
    'USAGE',
    '  pkg [--root DIR] [--json] [--yes] COMMAND [ARGS] [FLAGS]',
    '  pkg COMMAND --help',
    '',
    'COMMANDS',
    ...rows.map((r) => `  ${r[0]!.padEnd(w)}  ${r[1]}`),
    '',
    'GLOBAL FLAGS',
    ...flagLines(GLOBAL_FLAGS),
    '',
    'EXAMPLES',
    '  pkg repo add main http://10.0.2.2:8080/ --fingerprint HEX',
    '  pkg update',
    '  pkg install lua --yes',
    '  pkg rollback',
    '',
    'EXIT CODES',
    ...exitCodeLines(),
    '',
    'ENVIRONMENT',
    ...ENVIRONMENT.map(([k, v]) => `  ${k}: ${v}`),
    '',
  ].join('\n');
}

export function commandHelp(c: CommandDef): string {
  return [
    `pkg ${c.words.join(' ')}: ${c.summary}`,
    '',
    'USAGE',
    `  ${usageOf(c)}`,
    '',
    'DESCRIPTION',
    ...wrap(c.description, 76, '  '),
    ...(c.plan
      ? [
          '',
          ...wrap(
            'Shows the plan first and asks (answering no changes nothing and is not an error). Without a terminal it changes nothing unless --yes is given (E_CONFIRM).',
            76,
            '  ',
          ),
        ]
      : []),
    '',
    ...(c.flags.length ? ['FLAGS', ...flagLines(c.flags), ''] : []),
    'GLOBAL FLAGS',
    ...flagLines(GLOBAL_FLAGS.filter((f) => f.name !== 'version')),
    '',
    'EXAMPLES',
    ...c.examples.map((e) => `  ${e}`),
    '',
    'EXIT CODES',
    ...exitCodeLines(),
    '',
  ].join('\n');
}

export function topicHelp(topic: string, commands: CommandDef[]): string {
  const subs = commands.filter((c) => c.words[0] === topic);
  const w = Math.max(...subs.map((c) => usageOf(c).length));
  return [
    `pkg ${topic}: ${subs.map((c) => c.words[1]).join(', ')}`,
    '',
    'USAGE',
    ...subs.map((c) => `  ${usageOf(c).padEnd(w)}  ${c.summary}`),
    '',
    `Run \`pkg ${topic} COMMAND --help\` for details.`,
    '',
  ].join('\n');
}
