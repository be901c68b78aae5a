/**
 * Where `classify` gets its text: `--text` on the command line (short texts only: argv is visible to every user in
 * `ps`, and onnxruntime-node crashes at start-up when argv is large), `--text-file FILE` (`-` = stdin), or
 * `--stdin-json` (one JSON object `{"text": …, "text_pair"?: …}` on stdin: what programs such as the extension use).
 * Every text is bounded by MAX_TEXT_BYTES before any work.
 */
import { SpartanError, MAX_ARGV_TEXT_BYTES, MAX_TEXT_BYTES, checkTextSize, mib, sizeProblem, readRegularFileSync } from '../engine';

/** Reads stdin to its end, refusing more than `maxBytes` (without reading much past it). */
export async function readStdinBounded(maxBytes: number, what: string): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new SpartanError(`${what}: more than ${mib(maxBytes)} on stdin; the limit is ${mib(maxBytes)}`);
    parts.push(chunk);
  }
  return Buffer.concat(parts, size).toString('utf8');
}

async function fromFile(file: string, flag: string): Promise<string> {
  const text =
    file === '-' ? await readStdinBounded(MAX_TEXT_BYTES, `${flag} -`) : readRegularFileSync(file, MAX_TEXT_BYTES).toString('utf8');
  return text.replace(/^\uFEFF/, '').replace(/\r?\n$/, '');
}

export interface TextOptions {
  text?: string;
  textPair?: string;
  textFile?: string;
  textPairFile?: string;
  stdinJson?: boolean;
}

/** The text (and pair) to classify, or undefined when none of the text options was given. */
export async function readTextInput(o: TextOptions): Promise<{ text: string; textPair?: string } | undefined> {
  const sources = [o.text !== undefined, o.textFile !== undefined, Boolean(o.stdinJson)].filter(Boolean).length;
  if (sources === 0) {
    if (o.textPair !== undefined || o.textPairFile !== undefined)
      throw new SpartanError('--text-pair needs a first text (--text, --text-file or --stdin-json)');
    return undefined;
  }
  if (sources > 1) throw new SpartanError('give only one of --text, --text-file and --stdin-json');
  if (o.textPair !== undefined && o.textPairFile !== undefined) throw new SpartanError('give only one of --text-pair and --text-pair-file');
  if (o.textFile === '-' && o.textPairFile === '-') throw new SpartanError('--text-file and --text-pair-file cannot both read stdin');
  for (const [v, flag] of [
    [o.text, '--text'],
    [o.textPair, '--text-pair'],
  ] as const) {
    if (v !== undefined && Buffer.byteLength(v, 'utf8') > MAX_ARGV_TEXT_BYTES) {
      throw new SpartanError(
        `${sizeProblem(flag, Buffer.byteLength(v, 'utf8'), MAX_ARGV_TEXT_BYTES)} on the command line: pass long texts with ${flag}-file FILE (or -, stdin)`,
      );
    }
  }
  let text: string;
  let textPair: string | undefined;
  if (o.stdinJson) {
    if (o.textPair !== undefined || o.textPairFile !== undefined)
      throw new SpartanError('--stdin-json carries the pair itself ("text_pair"): drop --text-pair');
    const raw = await readStdinBounded(2 * MAX_TEXT_BYTES + 1024, '--stdin-json');
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new SpartanError(`--stdin-json: stdin is not valid JSON (${(e as Error).message})`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      throw new SpartanError('--stdin-json: stdin must hold one JSON object {"text": …, "text_pair"?: …}');
    const obj = v as Record<string, unknown>;
    if (typeof obj.text !== 'string') throw new SpartanError('--stdin-json: "text" must be a string');
    if (obj.text_pair !== undefined && typeof obj.text_pair !== 'string')
      throw new SpartanError('--stdin-json: "text_pair" must be a string');
    text = obj.text;
    textPair = obj.text_pair;
  } else {
    text = o.text ?? (await fromFile(o.textFile!, '--text-file'));
    textPair = o.textPair ?? (o.textPairFile !== undefined ? await fromFile(o.textPairFile, '--text-pair-file') : undefined);
  }
  checkTextSize(text, 'the text');
  if (textPair !== undefined) checkTextSize(textPair, 'the text pair');
  return { text, textPair };
}
