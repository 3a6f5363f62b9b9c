// The pop2gmail command's entry point: \`npm run build\` bundles it into dist/cli/pop2gmail.mjs
// (package.json \`bin\`); \`npx tsx cli/main.ts\` runs it from source during development.
import { main } from "./command-line";

process.exitCode = await main(process.argv.slice(2));
