/**
 * How the CLI talks: human-readable text by default; with --json one JSON result object on stdout and progress
 * events as JSON lines on stderr (what the VS Code extension parses).
 */
import type { CommandName, EventOf, ResultOf } from '../protocol/commands';

/**
 * A command's output channel. With a command name (`makeOutput<'train'>`), its events and result are checked
 * against the protocol the extension reads (src/protocol/commands.ts); without one, anything goes.
 */
export interface Output<C extends CommandName | undefined = undefined> {
  json: boolean;
  /** A progress event: a JSON line on stderr with --json, else a human line (if `human` is given). */
  event(e: C extends CommandName ? EventOf<C> : Record<string, unknown>, human?: string): void;
  /** A human-only line on stderr (suppressed with --json). */
  info(line: string): void;
  /** The command's result: JSON object on stdout, or the human text. */
  result(value: C extends CommandName ? ResultOf<C> : unknown, human: string): void;
}

export function makeOutput<C extends CommandName | undefined = undefined>(json: boolean): Output<C> {
  return {
    json,
    event(e, human) {
      if (json) process.stderr.write(JSON.stringify(e) + '\n');
      else if (human) process.stderr.write(human + '\n');
    },
    info(line) {
      if (!json) process.stderr.write(line + '\n');
    },
    result(value, human) {
      process.stdout.write(json ? JSON.stringify(value) + '\n' : human + '\n');
    },
  };
}
