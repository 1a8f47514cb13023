import { parentPort } from 'node:worker_threads';
import { SwpkgError, verifyPackageFile } from '../catalog/index.js';

// A worker thread of WorkerVerifier (verify-pool.ts): verifies each package path it is sent with
// verifyPackageFile and answers with the result or the refusal, tagged with the request's id.
const port = parentPort;
if (port === null) throw new Error('verify-worker.js runs only as a worker thread');
port.on('message', (m: { id: number; path: string }) => {
  verifyPackageFile(m.path).then(
    (verified) => port.postMessage({ id: m.id, verified }),
    (e: unknown) =>
      port.postMessage({
        id: m.id,
        error: e instanceof SwpkgError ? e.toJSON() : { message: String((e as Error | undefined)?.message ?? e) },
      }),
  );
});
