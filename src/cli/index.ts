/**
 * src/cli — the `mailgate` command: one file per subcommand, wired in main.ts. The CLI parses
 * arguments, builds the world services from options, calls the library and prints; it holds no
 * policy of its own. May import anything in src/.
 */
export { EXIT_USAGE, main } from './main.js';
