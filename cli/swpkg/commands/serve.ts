import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../shared/base-command.js';
import { serveRepository } from '../../../repo-server/index.js';

interface ServeResult {
  url: string;
  host: string;
  port: number;
  root: string;
  dns?: { host: string; port: number; name: string; addresses: string[] };
}

export default class Serve extends BaseCommand<ServeResult | undefined> {
  static override summary = 'Serve a published repository root over HTTP.';
  static override description =
    'HTTP/1.1 static server for a folder written by `swpkg repo publish`: ranges, ETags, cache headers (packages immutable, catalog revalidated), /health and /metrics, an access log on stderr. Refuses path traversal, dotfiles and anything outside ROOT. Binds 127.0.0.1 unless told otherwise. With --dns-port it also answers DNS for one name (the DNS-hosted guest scenario). Stops gracefully on SIGINT/SIGTERM; a second signal stops at once. With --json it prints one line `{"ok":true,"result":{"url":...}}` once listening.';
  static override examples = [
    '<%= config.bin %> serve ./public',
    '<%= config.bin %> serve ./public --host 127.0.0.1 --port 8080',
    '<%= config.bin %> serve ./public --port 8080 --dns-port 53 --dns-name repo.test --dns-address 10.0.2.2',
  ];
  static override args = {
    root: Args.string({ description: 'Folder to serve (the published repository root).', required: true }),
  };
  static override flags = {
    host: Flags.string({ summary: 'Address to listen on (127.0.0.1, ::1, or 0.0.0.0 to expose it).', default: '127.0.0.1' }),
    port: Flags.integer({ summary: 'TCP port; 0 picks a free one (printed).', default: 8080, min: 0, max: 65535 }),
    'dns-port': Flags.integer({ summary: 'Also answer DNS on this UDP port (53 for the guest).', min: 0, max: 65535 }),
    'dns-host': Flags.string({ summary: 'Address for the DNS responder (defaults to --host).', dependsOn: ['dns-port'] }),
    // No oclif defaults on these two: oclif applies dependsOn to defaulted flags too.
    'dns-name': Flags.string({ summary: 'Name the DNS responder answers. Default: repo.test.', dependsOn: ['dns-port'] }),
    'dns-address': Flags.string({
      summary:
        'Address to answer with (IPv4 → A, IPv6 → AAAA); repeatable. Default: 10.0.2.2 (the host as QEMU user networking shows it to the guest).',
      multiple: true,
      dependsOn: ['dns-port'],
    }),
    'grace-seconds': Flags.integer({ summary: 'On SIGINT/SIGTERM, let running downloads finish this long.', default: 10, min: 0 }),
  };

  // Lifetime: this command lives as long as the server. oclif prints a command's result
  // only after run() resolves, which here is at shutdown — too late for whoever waits for
  // the URL. So run() announces the result itself as soon as the server listens (the same
  // {ok,result,warnings} envelope, on ONE line so a supervisor can read it with a line
  // reader), then waits for a signal, closes gracefully and resolves with undefined, which
  // the base and oclif treat as "nothing more to print". Errors before listening still go
  // through the base's catch (E_NOT_FOUND for a missing ROOT, exit 2).
  override async run(): Promise<ServeResult | undefined> {
    const { args, flags } = await this.parse(Serve);
    // Access-log lines go to stderr in every mode (oclif's logToStderr is muted under --json,
    // where stdout must stay machine-readable but the log is still wanted).
    const stderr = (line: string): void => void process.stderr.write(line + '\n');
    const log = flags.quiet ? undefined : stderr;
    const dnsPort = flags['dns-port'];
    const handle = await serveRepository({
      root: args.root,
      host: flags.host,
      port: flags.port,
      ...(log ? { log } : {}),
      timeouts: { shutdownGraceMs: flags['grace-seconds'] * 1000 },
      ...(dnsPort === undefined
        ? {}
        : {
            dns: {
              port: dnsPort,
              name: flags['dns-name'] ?? 'repo.test',
              addresses: flags['dns-address'] ?? ['10.0.2.2'],
              ...(flags['dns-host'] === undefined ? {} : { host: flags['dns-host'] }),
            },
          }),
    });
    const ready: ServeResult = {
      url: handle.url,
      host: handle.host,
      port: handle.port,
      root: handle.root,
      ...(handle.dns ? { dns: handle.dns } : {}),
    };
    // oclif's log() is muted under --json, hence the direct write of the envelope line.
    if (this.jsonEnabled()) process.stdout.write(JSON.stringify(this.toSuccessJson(ready)) + '\n');
    else {
      this.render(ready);
      if (!flags.quiet) this.logToStderr('press Ctrl-C to stop');
    }

    await new Promise<void>((resolve) => {
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals): void => {
        signals++;
        if (signals === 1) {
          if (!flags.quiet)
            stderr(`${signal}: stopping (waiting up to ${flags['grace-seconds']} s for running downloads; signal again to stop now)`);
          void handle.close().then(() => {
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
            resolve();
          });
        } else {
          void handle.close({ graceMs: 0 });
        }
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    });
    return undefined;
  }

  protected override render(r: ServeResult | undefined): void {
    if (!r) return;
    this.log(`serving ${r.root} at ${r.url}`);
    if (r.dns) this.log(`answering DNS for ${r.dns.name} (${r.dns.addresses.join(', ')}) on ${r.dns.host}:${r.dns.port}/udp`);
  }
}
