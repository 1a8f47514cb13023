import { execFile } from 'node:child_process';
import { SwpkgError } from '../catalog/index.js';

/** Runs a host tool with a hard timeout; failures become E_BUILD naming the tool and its last stderr line. */
export function runTool(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; timeoutMs: number; env?: NodeJS.ProcessEnv; what: string },
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        cwd: opts.cwd,
        timeout: opts.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 64 << 20,
        env: { ...process.env, LC_ALL: 'C', ...opts.env },
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve({ stdout, stderr });
          return;
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        const last = String(stderr).trim().split('\n').pop() ?? '';
        if (e.code === 'ENOENT') {
          reject(
            new SwpkgError('E_BUILD', `${opts.what}: ${cmd} is not installed`, {
              hint: `install the Debian package that provides ${cmd} (mkfs.ext4: e2fsprogs; ldd: libc-bin; qemu-system-x86_64: qemu-system-x86; qemu-system-aarch64: qemu-system-arm; qemu-aarch64-static: qemu-user-static)`,
              details: { cmd },
              cause: err,
            }),
          );
          return;
        }
        reject(
          new SwpkgError('E_BUILD', `${opts.what}: ${cmd} ${e.killed ? `timed out after ${opts.timeoutMs} ms` : `failed: ${last}`}`, {
            details: { cmd, args: [...args], stderr: String(stderr).slice(-4000) },
            cause: err,
          }),
        );
      },
    );
  });
}
