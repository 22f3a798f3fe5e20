/** Writing large files whole or not at all, in pieces, without holding them in memory at once. */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Streams pieces into a temporary file beside `path`, then renames it into place; on any error the
 * temporary file is removed and `path` is untouched.
 */
export function writeFileInPieces(path: string, write: (put: (bytes: Uint8Array) => void) => void): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  let open = true;
  try {
    write((bytes) => {
      let done = 0;
      while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
    });
    closeSync(fd);
    open = false;
    renameSync(tmp, path);
  } catch (error) {
    if (open) closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
}
