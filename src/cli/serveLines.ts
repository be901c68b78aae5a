/**
 * Line splitting for `spartan serve` with a bound on the line length: readline buffers a line of any size, so a
 * client sending gigabytes without a newline would exhaust memory. An over-long line is dropped (up to its
 * newline) and reported through `onOversize`, so the next line is still read.
 */
import type { Readable } from 'node:stream';

export async function* boundedLines(input: Readable, maxBytes: number, onOversize: (bytes: number) => void): AsyncGenerator<string> {
  let parts: Buffer[] = [];
  let size = 0;
  let dropping = false;
  let dropped = 0;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (dropping) {
        dropped += piece.length;
      } else if (size + piece.length > maxBytes) {
        dropping = true;
        dropped = size + piece.length;
        parts = [];
        size = 0;
      } else {
        parts.push(piece);
        size += piece.length;
      }
      if (nl < 0) break;
      if (dropping) {
        onOversize(dropped);
        dropping = false;
        dropped = 0;
      } else {
        yield Buffer.concat(parts, size).toString('utf8').replace(/\r$/, '');
        parts = [];
        size = 0;
      }
      start = nl + 1;
    }
  }
  if (dropping) onOversize(dropped);
  else if (size > 0) yield Buffer.concat(parts, size).toString('utf8').replace(/\r$/, '');
}
