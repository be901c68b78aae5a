/**
 * Real labelled rows for issue 11's measurements (scripts/trust-check.ts, scripts/audit-grid.ts):
 * - SST-2 training sentences (GLUE), a seeded sample;
 * - paragraphs of the pretraining corpus (../shared/corpus) labelled with the section they come from
 *   (gutenberg, wikipedia, debian-docs): a different character from SST-2 (long paragraphs, topic and register,
 *   three labels), although the embedded backbone was pretrained on these very paragraphs;
 * - Debian package descriptions (the short and the long description of each binary package of a Debian release)
 *   labelled with the package's archive section, read from apt's lists: human-assigned labels on text outside
 *   the pretraining corpus (its Debian part is two manuals), many labels, some close to each other (libs, libdevel, devel);
 * - planted label flips (a seeded share of rows moved to another label) for the audit;
 * - multi-label rows made of one or two paragraphs from different sections, labelled with the set of sections.
 *
 * The corpus is one gzip'd text: files concatenated with one blank line between them, in the order of the
 * SHA-256 of their paths (../shared/corpus/build/assemble.py), one paragraph per line. PROVENANCE.md lists every
 * file with its section and byte count, so the byte ranges of the files — and the section of every paragraph —
 * follow from that table; the total is checked against the file's size.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { createRng, importGlueTask, shuffleInPlace, SpartanError } from '../../engine';

export interface LabelledText {
  text: string;
  label: string;
}

/** `n` SST-2 training rows, a seeded shuffle of the whole training file (seed 11: the figures' historical sample). */
export function sst2Rows(glueDir: string, n: number, seed = 11): LabelledText[] {
  const { rows } = importGlueTask('SST-2', path.join(glueDir, 'SST-2', 'train.tsv'));
  const all = shuffleInPlace(
    rows.map((r) => ({ text: r.text, label: r.label as string })),
    createRng(seed),
  );
  return all.slice(0, n);
}

/** SST-2's dev file (the first `n` rows). */
export function sst2Dev(glueDir: string, n = Infinity): LabelledText[] {
  const { rows } = importGlueTask('SST-2', path.join(glueDir, 'SST-2', 'dev.tsv'));
  return rows.slice(0, n).map((r) => ({ text: r.text, label: r.label as string }));
}

interface CorpusFile {
  file: string;
  section: string;
  bytes: number;
}

/** The files of PROVENANCE.md's last table, in corpus order. */
export function corpusFiles(corpusDir: string): CorpusFile[] {
  const md = fs.readFileSync(path.join(corpusDir, 'PROVENANCE.md'), 'utf8');
  const files: CorpusFile[] = [];
  for (const line of md.split('\n')) {
    const m = /^\| `(texts\/([^/`]+)\/[^`]+)` \|.*\| ([\d,]+) \| [\d,]+ \|$/.exec(line.trim());
    if (m) files.push({ file: m[1], section: m[2], bytes: Number(m[3].replace(/,/g, '')) });
  }
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  return files.sort((a, b) => (sha(a.file) < sha(b.file) ? -1 : 1));
}

/** Every paragraph (non-empty line) of the corpus with its section. */
export function corpusParagraphs(corpusDir: string): { text: string; section: string }[] {
  const files = corpusFiles(corpusDir);
  const data = zlib.gunzipSync(fs.readFileSync(path.join(corpusDir, 'corpus.txt.gz')));
  const expected = files.reduce((s, f) => s + f.bytes, 0) + files.length - 1;
  if (!files.length || expected !== data.length)
    throw new SpartanError(
      `${corpusDir}: PROVENANCE.md's ${files.length} files add up to ${expected} bytes, corpus.txt has ${data.length}`,
    );
  const out: { text: string; section: string }[] = [];
  let offset = 0;
  for (const f of files) {
    for (const line of data
      .subarray(offset, offset + f.bytes)
      .toString('utf8')
      .split('\n')) {
      if (line.trim()) out.push({ text: line.trim(), section: f.section });
    }
    offset += f.bytes + 1;
  }
  return out;
}

const wordCount = (s: string) => s.split(/\s+/).filter(Boolean).length;

/**
 * Paragraphs of `minWords`–`maxWords` words, `perLabel` from each section (seeded), labelled with the section,
 * shuffled; distinct texts only. Sections with fewer such paragraphs than `perLabel` are refused.
 */
export function corpusRows(
  paragraphs: { text: string; section: string }[],
  perLabel: number,
  opts: { minWords: number; maxWords: number; seed: number; exclude?: Set<string> },
): LabelledText[] {
  const bySection = new Map<string, string[]>();
  const seen = new Set<string>(opts.exclude);
  for (const p of paragraphs) {
    const n = wordCount(p.text);
    if (n < opts.minWords || n > opts.maxWords || seen.has(p.text)) continue;
    seen.add(p.text);
    if (!bySection.has(p.section)) bySection.set(p.section, []);
    bySection.get(p.section)!.push(p.text);
  }
  const rng = createRng(opts.seed);
  const rows: LabelledText[] = [];
  for (const section of [...bySection.keys()].sort()) {
    const texts = bySection.get(section)!;
    if (texts.length < perLabel)
      throw new SpartanError(`corpus section ${section}: only ${texts.length} paragraphs of ${opts.minWords}–${opts.maxWords} words`);
    for (const text of shuffleInPlace(texts, rng).slice(0, perLabel)) rows.push({ text, label: section });
  }
  return shuffleInPlace(rows, rng);
}

/** RFC 822-style stanzas of an apt list (Packages, Translation-en): field → value, continuation lines joined by \n. */
function aptStanzas(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  for (const block of text.split(/\n\n+/)) {
    const m = new Map<string, string>();
    let key = '';
    for (const line of block.split('\n')) {
      if (!line) continue;
      if (line[0] === ' ' || line[0] === '\t') m.set(key, `${m.get(key) ?? ''}\n${line.trim()}`);
      else {
        const i = line.indexOf(':');
        key = line.slice(0, i);
        m.set(key, line.slice(i + 1).trim());
      }
    }
    if (m.size) out.push(m);
  }
  return out;
}

/** An apt list file's text; lists are stored lz4-compressed (read with Debian's lz4cat) or plain. */
function readAptList(file: string): string {
  return file.endsWith('.lz4') ? execFileSync('lz4cat', [file], { encoding: 'utf8', maxBuffer: 1 << 30 }) : fs.readFileSync(file, 'utf8');
}

/**
 * Debian package descriptions labelled with their archive section (the part after a `contrib/` or `non-free/`
 * prefix), from a release's main Packages and Translation-en lists in `listsDir` (apt's /var/lib/apt/lists; the
 * long descriptions come with `apt-get update -o Acquire::Languages=en`). Text = short description + ". " + the
 * long one (paragraph marks dropped). A description shared by packages of different sections is dropped; a
 * duplicate is kept once. The `labels` largest sections are kept, `perLabel` seeded rows from each, shuffled.
 */
export function debianRows(listsDir: string, perLabel: number, opts: { labels: number; seed: number }): LabelledText[] {
  const find = (suffix: string) => {
    const f = fs.readdirSync(listsDir).find((n) => /_debian_dists_[a-z]+_main_/.test(n) && n.includes(suffix));
    if (!f) throw new SpartanError(`${listsDir}: no main ${suffix} list (run apt-get update -o Acquire::Languages=en)`);
    return path.join(listsDir, f);
  };
  const section = new Map<string, { section: string; md5: string }>();
  for (const s of aptStanzas(readAptList(find('binary-amd64_Packages')))) {
    const pkg = s.get('Package');
    const md5 = s.get('Description-md5');
    if (pkg && md5) section.set(pkg, { section: (s.get('Section') ?? '').split('/').pop()!, md5 });
  }
  const sectionsOf = new Map<string, Set<string>>();
  for (const s of aptStanzas(readAptList(find('i18n_Translation-en')))) {
    const p = section.get(s.get('Package') ?? '');
    const d = s.get('Description-en');
    if (!p || !d || p.md5 !== s.get('Description-md5')) continue;
    const [short, ...long] = d.split('\n');
    const text = [short.trim() + '.', ...long.filter((l) => l !== '.')].join(' ').replace(/\s+/g, ' ').trim();
    if (!sectionsOf.has(text)) sectionsOf.set(text, new Set());
    sectionsOf.get(text)!.add(p.section);
  }
  const bySection = new Map<string, string[]>();
  for (const [text, sections] of sectionsOf) {
    if (sections.size !== 1) continue;
    const s = [...sections][0];
    if (!bySection.has(s)) bySection.set(s, []);
    bySection.get(s)!.push(text);
  }
  const largest = [...bySection.entries()].sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1)).slice(0, opts.labels);
  const rng = createRng(opts.seed);
  const rows: LabelledText[] = [];
  for (const [label, texts] of largest.sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (texts.length < perLabel) throw new SpartanError(`Debian section ${label}: only ${texts.length} descriptions`);
    for (const text of shuffleInPlace(texts.sort(), rng).slice(0, perLabel)) rows.push({ text, label });
  }
  return shuffleInPlace(rows, rng);
}

/**
 * Moves a seeded `share` of the rows to another label (drawn uniformly among the others); returns the noisy rows
 * and the indices flipped.
 */
export function plantFlips<R extends LabelledText>(rows: R[], share: number, seed: number): { noisy: R[]; flipped: Set<number> } {
  const labels = [...new Set(rows.map((r) => r.label))].sort();
  const rng = createRng(seed);
  const flipped = new Set<number>();
  const k = Math.max(1, Math.round(share * rows.length));
  while (flipped.size < k) flipped.add(Math.floor(rng.next() * rows.length));
  const noisy = rows.map((r, i) => {
    if (!flipped.has(i)) return r;
    const others = labels.filter((l) => l !== r.label);
    return { ...r, label: others[Math.floor(rng.next() * others.length)] };
  });
  return { noisy, flipped };
}

/**
 * Multi-label rows from single-label ones: each row holds one paragraph or two from different labels (half
 * each, seeded, in random order), labelled with the sorted set of their labels. Every source row is used once.
 */
export function multiLabelRows(source: LabelledText[], seed: number): { text: string; label: string[] }[] {
  const rng = createRng(seed);
  const pool = shuffleInPlace([...source], rng);
  const out: { text: string; label: string[] }[] = [];
  while (pool.length) {
    const a = pool.pop()!;
    const j = rng.next() < 0.5 ? pool.findIndex((b) => b.label !== a.label) : -1;
    if (j < 0) {
      out.push({ text: a.text, label: [a.label] });
      continue;
    }
    const [b] = pool.splice(j, 1);
    const [first, second] = rng.next() < 0.5 ? [a, b] : [b, a];
    out.push({ text: `${first.text} ${second.text}`, label: [a.label, b.label].sort() });
  }
  return out;
}

/** The trivial multi-label baselines: predict every label on every row, or the training file's most frequent set. */
export function multiLabelBaselines(
  train: { label: string[] }[],
  dev: { label: string[] }[],
  labels: string[],
): { everyLabel: { microF1: number }; mostFrequentSet: { set: string[]; microF1: number; subsetAccuracy: number } } {
  const key = (s: string[]) => JSON.stringify([...s].sort());
  const counts = new Map<string, number>();
  for (const r of train) counts.set(key(r.label), (counts.get(key(r.label)) ?? 0) + 1);
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0][0];
  const set = JSON.parse(top) as string[];
  const microF1 = (predict: (r: { label: string[] }) => string[]) => {
    let tp = 0,
      fp = 0,
      fn = 0;
    for (const r of dev) {
      const p = new Set(predict(r));
      for (const l of labels) {
        const gold = r.label.includes(l);
        if (p.has(l) && gold) tp++;
        else if (p.has(l)) fp++;
        else if (gold) fn++;
      }
    }
    return tp ? (2 * tp) / (2 * tp + fp + fn) : 0;
  };
  return {
    everyLabel: { microF1: microF1(() => labels) },
    mostFrequentSet: {
      set,
      microF1: microF1(() => set),
      subsetAccuracy: dev.filter((r) => key(r.label) === top).length / Math.max(1, dev.length),
    },
  };
}
