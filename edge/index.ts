// Public API of edge/: how every entry point (swpkg, swport, pkg, the image programs) talks to people
// and to scripts. One error renderer, one progress reporter, one byte formatter, one JSON envelope,
// one explanation renderer, and terminal escaping for text from outside. Depends on catalog/ only and
// never on oclif, so the guest's pkg bundle carries it.
export { escapeTerminal, escapeTerminalLines } from './terminal-text.js';
export { formatQuantity } from './format.js';
export { formatTable } from './table.js';
export { formatBytes } from '../catalog/format-bytes.js';
export { CollectingReporter, silentReporter, type ProgressUnit, type Reporter } from '../catalog/reporter.js';
export { TerminalReporter, type TerminalStream } from './terminal-reporter.js';
export { renderError, renderWarning, type ErrorView } from './render-error.js';
export { explanationLines, renderExplanation, STRUCTURED_EXPLANATION_KEYS } from './explanation.js';
export { okEnvelope, errorEnvelope, jsonText, exitCodeOf, type OkEnvelope, type ErrorEnvelope } from './envelope.js';
