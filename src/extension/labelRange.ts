/**
 * Where a row's label value is written in its line, so a diagnostic underlines it and a quick fix replaces it
 * with another label. Pure (no `vscode`): the unit tests run it on plain strings.
 */

/** 0-based [start, end) of the JSON value of the row's top-level "label" key, or undefined when not found. */
export function labelValueRange(line: string): { start: number; end: number } | undefined {
  // Walk the top-level object so a "label" inside a string or a nested object is not taken for the key.
  let depth = 0;
  let i = 0;
  while (i < line.length) {
    const ch = line[i];
    if (ch === '"') {
      const end = stringEnd(line, i);
      if (end < 0) return undefined;
      if (depth === 1 && line.slice(i, end + 1) === '"label"') {
        let j = end + 1;
        while (j < line.length && /\s/.test(line[j])) j++;
        if (line[j] === ':') {
          j++;
          while (j < line.length && /\s/.test(line[j])) j++;
          const valueEnd = jsonValueEnd(line, j);
          return valueEnd > j ? { start: j, end: valueEnd } : undefined;
        }
      }
      i = end + 1;
      continue;
    }
    if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
    i++;
  }
  return undefined;
}

/** Index of the closing quote of the string opening at `start`, or −1. */
function stringEnd(s: string, start: number): number {
  for (let i = start + 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '"') return i;
  }
  return -1;
}

/** End (exclusive) of the JSON value starting at `start`: a string, an array/object, or a bare literal. */
function jsonValueEnd(s: string, start: number): number {
  if (s[start] === '"') {
    const e = stringEnd(s, start);
    return e < 0 ? -1 : e + 1;
  }
  if (s[start] === '[' || s[start] === '{') {
    let depth = 0;
    for (let i = start; i < s.length; i++) {
      if (s[i] === '"') {
        i = stringEnd(s, i);
        if (i < 0) return -1;
      } else if (s[i] === '[' || s[i] === '{') depth++;
      else if (s[i] === ']' || s[i] === '}') {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    return -1;
  }
  let i = start;
  while (i < s.length && !/[,}\s]/.test(s[i])) i++;
  return i;
}
