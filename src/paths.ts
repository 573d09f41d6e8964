import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The checkout crisp runs from, found by walking up to package.json, so that data files
 * (migrations, the proto) resolve the same whether the code runs from src/ via tsx or
 * from the compiled dist/.
 */
function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('crisp: cannot find its package root');
    dir = parent;
  }
  return dir;
}

export const PACKAGE_ROOT = findPackageRoot();
export const MIGRATIONS_DIR = join(PACKAGE_ROOT, 'migrations');
export const PROTO_PATH = join(PACKAGE_ROOT, 'src', 'cri', 'proto', 'api.proto');
/** The same proto as protobufjs's JSON, written by gen:proto (scripts/gen-proto-json.mjs). */
export const PROTO_JSON_PATH = join(PACKAGE_ROOT, 'src', 'cri', 'proto', 'gen', 'api.json');
/** The compiled spawn helper, where scripts/build-spawn-helper.sh puts it (see host/spawn-helper.ts). */
export const COMPILED_SPAWN_HELPER = join(PACKAGE_ROOT, 'dist', 'bin', 'crisp-spawn-helper');
