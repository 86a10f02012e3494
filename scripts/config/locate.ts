// Maps a dotted config path ("secrets.3.format") to the line of config.toml that sets it,
// so schema errors can say "config.toml:41" and not only the field path.
// A best-effort line scanner: tables, arrays of tables and key lines; inline tables fall back
// to the line of their enclosing key.

function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') return line.slice(0, i);
  }
  return line;
}

function splitKey(raw: string): string[] {
  return raw
    .split('.')
    .map((p) => p.trim().replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1'))
    .filter((p) => p.length > 0);
}

export function indexLines(source: string): Map<string, number> {
  const index = new Map<string, number>();
  const counters = new Map<string, number>(); // resolved array-table path -> current index
  let current: string[] = [];

  const resolve = (parts: string[], lastIsArray: boolean): string[] => {
    const out: string[] = [];
    parts.forEach((p, i) => {
      out.push(p);
      const key = out.join('.');
      const isLast = i === parts.length - 1;
      if (isLast && lastIsArray) {
        const n = (counters.get(key) ?? -1) + 1;
        counters.set(key, n);
        // A new element resets the counters of arrays nested below it.
        for (const k of [...counters.keys()]) if (k.startsWith(`${key}.${n - 1}.`)) counters.delete(k);
        out.push(String(n));
      } else if (counters.has(key)) {
        out.push(String(counters.get(key)));
      }
    });
    return out;
  };

  source.split(/\r?\n/).forEach((rawLine, i) => {
    const line = stripComment(rawLine).trim();
    const lineNo = i + 1;
    let m = /^\[\[\s*(.+?)\s*\]\]$/.exec(line);
    if (m?.[1]) {
      current = resolve(splitKey(m[1]), true);
      index.set(current.join('.'), lineNo);
      return;
    }
    m = /^\[\s*(.+?)\s*\]$/.exec(line);
    if (m?.[1]) {
      current = resolve(splitKey(m[1]), false);
      if (!index.has(current.join('.'))) index.set(current.join('.'), lineNo);
      return;
    }
    m = /^("[^"]*"|'[^']*'|[A-Za-z0-9_.\-" ]+?)\s*=/.exec(line);
    if (m?.[1]) {
      const path = [...current, ...splitKey(m[1])].join('.');
      if (!index.has(path)) index.set(path, lineNo);
    }
  });
  return index;
}

/** The line that sets `path`, or that of its nearest ancestor which has one. */
export function lineOf(index: Map<string, number>, path: (string | number)[]): number | undefined {
  const parts = path.map(String);
  while (parts.length > 0) {
    const line = index.get(parts.join('.'));
    if (line !== undefined) return line;
    parts.pop();
  }
  return undefined;
}
