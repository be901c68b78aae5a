/**
 * The README's folder table ("How it works") lists exactly the folders of src/ two levels deep (what
 * `find src -mindepth 1 -maxdepth 2 -type d` prints), so a moved or new folder fails here until the table says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

test("the README's folder table matches the folders of src/", () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## How it works'), readme.indexOf('Design choices, and why:'));
  const listed = [...section.matchAll(/^\| `(src\/[^`]*?)\/?` \|/gm)].map((m) => m[1]).sort();
  const folders: string[] = [];
  for (const top of fs.readdirSync(path.join(ROOT, 'src'), { withFileTypes: true })) {
    if (!top.isDirectory()) continue;
    folders.push(`src/${top.name}`);
    for (const sub of fs.readdirSync(path.join(ROOT, 'src', top.name), { withFileTypes: true }))
      if (sub.isDirectory()) folders.push(`src/${top.name}/${sub.name}`);
  }
  assert.deepEqual(listed, folders.sort());
});
