// The imports of a TypeScript source file, read as text: every `import … from '…'`,
// `export … from '…'`, side-effect `import '…'` and `import('…')` with a literal specifier. For
// the unit tests that check the layering (dependency-rules) and the packages the daemon loads
// before its own modules (eager-compile); dependency-cruiser, which states such rules, needs Node 22.
const STATEMENT = /(?:^|\n)\s*(?:import|export)\s+([^;'"]*?)\s*from\s+'([^']+)'|(?:^|\n)\s*import\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g;

export interface ImportOf {
  spec: string;
  /** Every binding a type (`import type …`, or `{ type A, type B }`): TypeScript drops such an import. */
  typeOnly: boolean;
  /** `import('…')`: loaded when it runs, not with the module. */
  dynamic: boolean;
}

function typeOnly(bindings: string): boolean {
  if (/^type\s/.test(bindings)) return true;
  const named = /^\{([^}]*)\}$/.exec(bindings.trim());
  return named !== null && named[1]!.split(',').map((b) => b.trim()).filter(Boolean).every((b) => b.startsWith('type '));
}

export function importsOf(text: string): ImportOf[] {
  return [...text.matchAll(STATEMENT)].map((m) => ({
    spec: (m[2] ?? m[3] ?? m[4])!,
    typeOnly: m[1] !== undefined && typeOnly(m[1]),
    dynamic: m[4] !== undefined,
  }));
}
