"""dome.yaml's JSON Schema (dome_tasks/manifest/dome.schema.json): the shipped file is what the
generator writes, the sample validates, and the mistakes an editor should flag are flagged
(the loader refuses the same documents)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dome_tasks.errors import ManifestError
from dome_tasks.manifest import editor_schema, json_schema, schema
from dome_tasks.manifest.loader import loads
from tests.helpers import ROOT

GOOD = """\
version: 1
defaults:
  compatibility_date: "2025-01-01"
  main: src/index.js
environments:
  production: {suffix: "", protected: true}
  staging: {suffix: -staging}
  local: {suffix: -dev, kind: local, ports: 8787-8799}
services:
  silo:
    path: services/silo
    minify: true                 # wrangler's own key, passed through
    d1_databases:
      DB: {database_name: silo-db, migrations_dir: migrations, remote: true}
    containers:
      - {class_name: Box, image: ./Dockerfile, instances: 1}   # deprecated, still read
    environments:
      staging:
        vars: {LOG_LEVEL: debug}
  api:
    path: services/api
    services: {SILO: silo}
    depends_on: [silo]
"""


def errors(doc: Any) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in json_schema.validator().iter_errors(doc)
    ]


def test_the_shipped_schema_is_what_the_generator_writes() -> None:
    assert json_schema.PATH.read_text(encoding="utf-8") == json_schema.text(), (
        "regenerate: python -m dome_tasks.manifest.json_schema > "
        "dome_tasks/manifest/dome.schema.json")
    assert editor_schema.INSTALLED == json_schema.PATH  # what editors get is that file


def test_the_command_prints_the_schema_and_its_path() -> None:
    run = [sys.executable, "-m", "dome_tasks.manifest.json_schema"]
    printed = subprocess.run(run, capture_output=True, text=True, check=True, cwd=ROOT)
    assert printed.stdout == json_schema.PATH.read_text(encoding="utf-8")
    where = subprocess.run([*run, "--path"], capture_output=True, text=True, check=True, cwd=ROOT)
    assert Path(where.stdout.strip()) == json_schema.PATH and json_schema.PATH.is_file()


def test_it_is_a_valid_draft_07_schema_whose_wrangler_refs_all_resolve() -> None:
    validator = json_schema.validator()
    type(validator).check_schema(validator.schema)
    resolver = json_schema.registry().resolver()  # every $ref into wrangler's schema resolves
    text = json_schema.PATH.read_text(encoding="utf-8")
    refs = {line.split('"$ref": ')[1].strip().strip('",') for line in text.splitlines()
            if '"$ref": "https://' in line}
    assert len(refs) > 50
    for ref in refs:
        assert resolver.lookup(ref).contents, ref


def test_every_dome_key_has_a_type_and_a_description() -> None:
    generated = json_schema.generate()
    worker = generated["definitions"]["worker"]["properties"]
    environment = generated["properties"]["environments"]["additionalProperties"]["properties"]
    for fields, properties in ((schema.MANIFEST["properties"], generated["properties"]),
                               (schema.WORKER_FIELDS, worker),
                               (schema.ENVIRONMENT["properties"], environment)):
        for key in fields:
            assert properties[key]["description"], key
            assert {"type", "anyOf", "$ref"} & set(properties[key]), key
    assert worker["main"]["type"] == "string"
    assert worker["d1_databases"]["additionalProperties"]["properties"]["database_name"][
        "description"].startswith("The database's name")
    assert worker["minify"] == {"$ref": f"{json_schema.wrangler_url()}#/definitions/RawConfig"
                                        "/properties/minify"}


def test_the_sample_and_the_example_validate() -> None:
    sample = yaml.safe_load((ROOT / "sample" / "dome.yaml").read_text(encoding="utf-8"))
    assert errors(sample) == []
    assert errors(yaml.safe_load(GOOD)) == []
    loads(GOOD, "dome.yaml", check_files=False)  # the loader agrees


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("version: 1\n", "version: 1\nservise: {}\n"),
        ("version: 1\n", 'version: "1"\n'),
        ("version: 1\n", "version: 2\n"),
        ("    path: services/silo\n", "    path: services/silo\n    compatability_date: x\n"),
        ("    path: services/silo\n", "    path: services/silo\n    route: example.com/*\n"),
        ("    minify: true", '    minify: "yes"'),  # wrangler's key, checked by wrangler's schema
        ("remote: true}", "remote: true, databse_id: x}"),
        ("kind: local,", "kind: cloud,"),
        ("depends_on: [silo]", "depends_on: silo"),
    ],
    ids=["unknown-top-level-key", "wrong-type", "unsupported-version", "misspelt-worker-key",
         "refused-wrangler-key", "wrangler-value-type", "misspelt-binding-field",
         "unknown-environment-kind", "string-for-list"],
)
def test_typical_mistakes_are_flagged_by_the_schema_and_the_loader(
    change: str, expected: str
) -> None:
    assert change in GOOD
    text = GOOD.replace(change, expected, 1)
    assert errors(yaml.safe_load(text)) != []
    with pytest.raises(ManifestError):
        loads(text, "dome.yaml", check_files=False)


def test_the_messages_say_where() -> None:
    found = errors(yaml.safe_load(GOOD.replace("version: 1\n", "version: 1\nservise: {}\n")))
    assert found == [": Additional properties are not allowed ('servise' was unexpected)"]
    found = errors(yaml.safe_load(GOOD.replace("main: src/index.js", "main: 5")))
    assert found == ["defaults.main: 5 is not of type 'string'"]
