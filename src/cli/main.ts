// The `crisp` command's entry point. For `crisp daemon` crisp's own modules are compiled as they
// load (src/cli/eager-compile.ts says why); every other command loads them as node does.
import { loadCompiled } from './eager-compile.js';

const argv = process.argv.slice(2);
const commands = () => import('./commands.js');
const { runCommand } = argv[0] === 'daemon' ? await loadCompiled(commands) : await commands();
void runCommand(argv);
