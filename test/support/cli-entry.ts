// Runs the CLI from the TypeScript sources, as bin/mailgate runs it from dist/.
import { main } from '../../src/cli/index.js';

process.exitCode = await main(process.argv.slice(2));
